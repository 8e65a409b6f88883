"""The GPU worker's task: run one edit job (or, with JOB_BATCH_SIZE > 1, a micro-batch of
queued jobs like it: :mod:`editplatform.jobs.batching`).

Routed to the `gpu` queue (task_routes, set by the app); acks late and rejects on worker
loss (a killed worker's message goes back to the queue); soft/hard time limits from settings.
Exactly-once effects come from the lease in :mod:`editplatform.jobs.execution`. Faults are
sorted (:mod:`editplatform.jobs.faults`, shared with the batched run):

* bad input (the image or the edits turn out unusable): the job fails, no retry;
* transient (database or storage unreachable, model bundle unavailable, the artifacts'
  key-encryption key unavailable, CUDA out of memory): the job goes back to `queued`
  (stage `retrying`, the reason in its error) and the task retries with exponential
  backoff and jitter, up to ``max_retries``; then it fails;
* anything else is a bug: the job fails with a generic message, the traceback is logged.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from editplatform.jobs import (
    artifacts,
    batching,
    engine,
    execution,
    faults,
    holding,
    model_pin,
    pipeline,
)
from editplatform.jobs.faults import (  # noqa: F401 - the task's fault rules, re-exported
    alignment_failure,
    backoff_seconds,
    is_transient,
)
from editplatform.jobs.sweeper import sweep
from editplatform.jobs.worker_hooks import EXPIRE_HELD, RUN_EDIT_JOB, SWEEP

logger = logging.getLogger(__name__)
MAX_RETRIES = 5


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
    worker = self.request.hostname or "worker"
    try:
        pin = model_pin.pinned_version(job_id)
        catalog = engine.get_catalog(pin).catalog
        run = execution.claim(job_id, worker, catalog)
        runs = batching.gather(run, worker, catalog) if run is not None else []
    except engine.UnknownModelVersion as exc:
        return "failed" if model_pin.refuse(job_id, str(exc)) else "skipped"
    except (OperationalError, InterfaceError, engine.ModelUnavailable) as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from None
    if run is None:
        return "skipped"
    if len(runs) > 1:
        return _run_batch(self, runs, pin)
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
        return batching.conclude(run, result)
    except Exception as exc:
        outcome = faults.settle_known(run, exc)
        if outcome is not None:
            return outcome
        if is_transient(exc) and self.request.retries < self.max_retries:
            faults.release(run, exc)
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from None
        return faults.settle_final(run, exc, self.request.retries)
    finally:
        beat.stop()


def _run_batch(task, runs, pin) -> str:
    """A micro-batch (JOB_BATCH_SIZE > 1 and more queued jobs like this one): the
    outcome of the message's own job; a transient fault retries it like a lone job."""
    own = runs[0].job.pk
    outcomes = batching.run_batch(
        runs, pin, retries=task.request.retries, max_retries=task.max_retries
    )
    countdown = backoff_seconds(task.request.retries)
    batching.retry_others(outcomes, own, countdown)
    outcome = outcomes.get(own, "superseded")
    if isinstance(outcome, tuple):
        raise task.retry(exc=outcome[1], countdown=countdown) from None
    return outcome


@shared_task(name=SWEEP, ignore_result=True)
def sweep_jobs() -> dict:
    return sweep()


@shared_task(name=EXPIRE_HELD, ignore_result=True)
def expire_held_jobs() -> int:
    """Destroy the held outputs of jobs no approver decided within APPROVAL_TTL_HOURS."""
    return holding.expire_held()
