"""Sorting a job run's exceptions into outcomes: which fail the job (and with which
code), which are transient (retry), which mean the run is no longer ours.

Shared by the one-job task and the batched run (:mod:`editplatform.jobs.batching`), so a
job that fails inside a batch fails exactly as it would have alone.
"""

from __future__ import annotations

import logging
import random

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from editplatform.jobs import artifacts, engine, execution, model_pin
from inversion.align.errors import (
    AlignmentError,
    FaceIndexOutOfRange,
    MultipleFaces,
    NoFaceFound,
    NoObjectFound,
)
from inversion.errors import EditError, InvalidImage

logger = logging.getLogger(__name__)


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


def settle_known(run, exc: BaseException) -> str | None:
    """End ``run`` for an exception whose meaning is known; the outcome, or None when
    ``exc`` is not one of them (transient or a bug: the caller decides)."""
    if isinstance(exc, execution.LeaseLost):
        logger.warning("job %s: lease lost (taken over or finished elsewhere)", run.job.pk)
        return "superseded"
    if isinstance(exc, execution.JobCancelled):
        execution.cancelled(run)
        return "cancelled"
    if isinstance(exc, SoftTimeLimitExceeded):
        execution.fail(
            run,
            "time_limit",
            f"the job ran longer than {settings.JOB_SOFT_TIME_LIMIT} s and was stopped",
        )
        return "failed"
    if isinstance(exc, AlignmentError):
        code, details = alignment_failure(exc)
        execution.fail(run, code, str(exc), **details)
        return "failed"
    if isinstance(exc, InvalidImage | EditError):
        execution.fail(run, "bad_input", str(exc))
        return "failed"
    if isinstance(exc, artifacts.ArtifactErased | artifacts.ArtifactUnreadable):
        # shredded while queued, or a ciphertext that does not authenticate: no retry helps
        execution.fail(run, exc.code, exc.message)
        return "failed"
    if isinstance(exc, engine.UnknownModelVersion):
        execution.fail(run, model_pin.CODE, str(exc))
        return "failed"
    return None


def settle_final(run, exc: BaseException, retries: int) -> str:
    """End ``run`` for a fault no retry will follow (a bug, or retries used up)."""
    if isinstance(exc, DatabaseError):
        logger.error("job %s: database error", run.job.pk, exc_info=exc)
        execution.fail(run, "internal_error", "the job failed because of a database error")
        return "failed"
    if is_transient(exc):
        execution.fail(run, "transient_fault", f"gave up after {retries} retries: {exc}")
        return "failed"
    logger.error("job %s: unexpected error", run.job.pk, exc_info=exc)
    execution.fail(
        run,
        "internal_error",
        f"the job failed unexpectedly ({type(exc).__name__}); operators have the log",
    )
    return "failed"


def release(run, exc) -> None:
    """Give ``run``'s job back to the queue after a transient fault."""
    logger.warning("job %s: transient fault (%s); will retry", run.job.pk, exc)
    try:
        execution.release_for_retry(run, f"retrying after a transient fault: {exc}")
    except Exception:  # the database may be the fault; the lease then expires instead
        logger.warning("job %s: could not release the lease", run.job.pk, exc_info=True)
