"""The GPU worker's task: run one edit job.

Routed to the `gpu` queue (task_routes, set by the app); acks late and rejects on worker
loss (a killed worker's message goes back to the queue); soft/hard time limits from settings.
Exactly-once effects come from the lease in :mod:`editplatform.jobs.execution`. Faults are sorted:

* bad input (the image or the edits turn out unusable): the job fails, no retry;
* transient (database or storage unreachable, model bundle unavailable, the artifacts'
  key-encryption key unavailable, CUDA out of memory): the job goes back to `queued`
  (stage `retrying`, the reason in its error) and the task retries with exponential
  backoff and jitter, up to ``max_retries``; then it fails;
* anything else is a bug: the job fails with a generic message, the traceback is logged.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from editplatform.jobs import (
    artifacts,
    domain_outcome,
    engine,
    execution,
    holding,
    model_pin,
    pipeline,
    policy,
)
from editplatform.jobs.states import State
from editplatform.jobs.sweeper import sweep
from editplatform.jobs.worker_hooks import EXPIRE_HELD, RUN_EDIT_JOB, SWEEP
from inversion.align.errors import (
    AlignmentError,
    FaceIndexOutOfRange,
    MultipleFaces,
    NoFaceFound,
    NoObjectFound,
)
from inversion.errors import EditError, InvalidImage

logger = logging.getLogger(__name__)
MAX_RETRIES = 5


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | engine.ModelUnavailable):
        return True
    if isinstance(exc, artifacts.ArtifactKeysUnavailable):  # KEK file or KMS unavailable
        return True
    if isinstance(exc, OSError):  # storage (local disk, S3 connection)
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def alignment_failure(exc: AlignmentError) -> tuple[str, dict]:
    """The job's error code (shown to the requester) and audit details of an alignment error."""
    if isinstance(exc, NoFaceFound):
        return "no_face", {}
    if isinstance(exc, MultipleFaces):
        return "multiple_faces", {"face_count": exc.count}
    if isinstance(exc, FaceIndexOutOfRange):
        return "face_index_out_of_range", {"face_count": exc.count, "face_index": exc.index}
    if isinstance(exc, NoObjectFound):
        return "no_subject", {}
    return "alignment_failed", {}


def backoff_seconds(retries: int) -> float:
    return min(60.0, 2.0**retries) * (0.5 + random.random() / 2)


@shared_task(
    bind=True,
    name=RUN_EDIT_JOB,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.JOB_SOFT_TIME_LIMIT,
    time_limit=settings.JOB_HARD_TIME_LIMIT,
    max_retries=MAX_RETRIES,
    ignore_result=True,
)
def run_edit_job(self, job_id: str) -> str:
    try:
        pin = model_pin.pinned_version(job_id)
        catalog = engine.get_catalog(pin).catalog
        run = execution.claim(job_id, self.request.hostname or "worker", catalog)
    except engine.UnknownModelVersion as exc:
        return "failed" if model_pin.refuse(job_id, str(exc)) else "skipped"
    except (OperationalError, InterfaceError, engine.ModelUnavailable) as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from None
    if run is None:
        return "skipped"
    beat = execution.start_heartbeat(run)
    try:
        inverter = engine.get_inverter(pin)
        original = artifacts.read(run.job.original)
        result = pipeline.run(
            inverter,
            original,
            run.job.edits,
            lambda stage, pct: execution.report_progress(run, stage, pct),
            face_index=run.job.face_index,
            quality=run.job.quality or "fast",
            refine_steps=settings.REFINE_MAX_STEPS,
        )
        beat.stop()
        decision = policy.out_of_domain_decision(run.job, result.domain)
        if decision == "refused":
            return "failed" if domain_outcome.refuse(run, result) else "superseded"
        if not execution.succeed(run, result, decision=decision):
            return "superseded"
        return "held" if run.job.state == State.AWAITING_APPROVAL else "succeeded"
    except execution.LeaseLost:
        logger.warning("job %s: lease lost (taken over or finished elsewhere); stopping", job_id)
        return "superseded"
    except execution.JobCancelled:
        execution.cancelled(run)
        return "cancelled"
    except SoftTimeLimitExceeded:
        execution.fail(
            run,
            "time_limit",
            f"the job ran longer than {settings.JOB_SOFT_TIME_LIMIT} s and was stopped",
        )
        return "failed"
    except AlignmentError as exc:
        code, details = alignment_failure(exc)
        execution.fail(run, code, str(exc), **details)
        return "failed"
    except (InvalidImage, EditError) as exc:
        execution.fail(run, "bad_input", str(exc))
        return "failed"
    except (artifacts.ArtifactErased, artifacts.ArtifactUnreadable) as exc:
        # shredded while queued, or a ciphertext that does not authenticate: no retry helps
        execution.fail(run, exc.code, exc.message)
        return "failed"
    except engine.UnknownModelVersion as exc:
        execution.fail(run, model_pin.CODE, str(exc))
        return "failed"
    except DatabaseError as exc:
        if is_transient(exc) and self.request.retries < self.max_retries:
            _release(run, exc)
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from None
        logger.exception("job %s: database error", job_id)
        execution.fail(run, "internal_error", "the job failed because of a database error")
        return "failed"
    except Exception as exc:
        if is_transient(exc):
            if self.request.retries < self.max_retries:
                _release(run, exc)
                raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from None
            execution.fail(
                run, "transient_fault", f"gave up after {self.request.retries} retries: {exc}"
            )
            return "failed"
        logger.exception("job %s: unexpected error", job_id)
        execution.fail(
            run,
            "internal_error",
            f"the job failed unexpectedly ({type(exc).__name__}); operators have the log",
        )
        return "failed"
    finally:
        beat.stop()


def _release(run, exc) -> None:
    logger.warning("job %s: transient fault (%s); will retry", run.job.pk, exc)
    try:
        execution.release_for_retry(run, f"retrying after a transient fault: {exc}")
    except Exception:  # the database may be the fault; the lease then expires instead
        logger.warning("job %s: could not release the lease", run.job.pk, exc_info=True)


@shared_task(name=SWEEP, ignore_result=True)
def sweep_jobs() -> dict:
    return sweep()


@shared_task(name=EXPIRE_HELD, ignore_result=True)
def expire_held_jobs() -> int:
    """Destroy the held outputs of jobs no approver decided within APPROVAL_TTL_HOURS."""
    return holding.expire_held()
