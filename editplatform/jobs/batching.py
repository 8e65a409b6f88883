"""Micro-batching on the worker: one delivery runs up to JOB_BATCH_SIZE queued jobs.

The task that receives job A's message claims A as usual, then claims up to
JOB_BATCH_SIZE - 1 more *queued* jobs pinned to the same model version with the same
quality mode (oldest first), each through :func:`execution.claim` — so each gets its own
lease, its own ``job.started`` event, and the same refusals a delivery of its own would
apply (cancelled while queued, parameters tampered, too many attempts, approval
re-check). Their model work runs as one batch (:mod:`editplatform.jobs.pipeline_batch`);
everything else stays per job: progress writes fenced by the job's lease, cancellation
noticed at the job's next step, its own failure code, its own success or hold commit
with its own audit chain.

The claimed jobs' own messages, when they arrive, find the job running under a live
lease or finished and do nothing (the claim's rules), so no job runs twice. None is
lost either: a job released after a transient fault is published again, and a batch
whose worker dies leaves its jobs running with a lease that stops being refreshed,
which the sweeper re-publishes once it expires (as for a single job).
"""

from __future__ import annotations

import logging
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from editplatform.jobs import (
    artifacts,
    domain_outcome,
    engine,
    execution,
    faults,
    pipeline_batch,
    policy,
)
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State

logger = logging.getLogger(__name__)


def gather(first: execution.Run, worker: str, catalog) -> list[execution.Run]:
    """``first`` plus up to JOB_BATCH_SIZE - 1 queued jobs of the same model pin and
    quality mode, each claimed under its own lease (a job another worker wins is
    skipped)."""
    size = settings.JOB_BATCH_SIZE
    runs = [first]
    if size <= 1:
        return runs
    job = first.job
    candidates = list(
        EditJob.objects.filter(
            state=State.QUEUED,
            model_pin=job.model_pin,
            quality=job.quality,
            cancel_requested=False,
        )
        .exclude(pk=job.pk)
        .order_by("queued_at")
        .values_list("pk", flat=True)[: 2 * (size - 1)]
    )
    for pk in candidates:
        if len(runs) >= size:
            break
        try:
            run = execution.claim(pk, worker, catalog)
        except DatabaseError:  # its own message will try again
            logger.warning("job %s: could not be claimed into a batch", pk, exc_info=True)
            break
        if run is not None:
            runs.append(run)
    if len(runs) > 1:
        logger.info("job %s: batched with %d more job(s)", job.pk, len(runs) - 1)
    return runs


def conclude(run: execution.Run, result, stored: dict | None = None) -> str:
    """Commit a job's result: released, held for approval, or refused by the domain gate.
    ``stored``: its outputs' rows, when the batch stored them together."""
    decision = policy.out_of_domain_decision(run.job, result.domain)
    if decision == "refused":
        return "failed" if domain_outcome.refuse(run, result) else "superseded"
    if not execution.succeed(run, result, decision=decision, stored=stored):
        return "superseded"
    return "held" if run.job.state == State.AWAITING_APPROVAL else "succeeded"


def run_batch(
    runs: list[execution.Run], pin: str | None, *, retries: int, max_retries: int
) -> dict:
    """Run the claimed ``runs`` as one batch; ``{job id: outcome}``.

    An outcome is ``succeeded``, ``held``, ``failed``, ``cancelled``, ``superseded``, or
    ``("retry", exc)`` for a transient fault: the caller retries its own message's job
    (:func:`retry_others` republishes the rest).
    """
    outcomes: dict = {}
    beat = execution.start_heartbeat(runs)

    def settle(run, exc) -> None:
        outcome = faults.settle_known(run, exc)
        if outcome is None:
            if faults.is_transient(exc) and retries < max_retries:
                faults.release(run, exc)
                outcome = ("retry", exc)
            else:
                outcome = faults.settle_final(run, exc, retries)
        outcomes[run.job.pk] = outcome

    try:
        inverter = engine.get_inverter(pin)
        pairs = []
        for run in runs:
            try:
                original = artifacts.read(run.job.original)
            except Exception as exc:
                settle(run, exc)
                continue
            item = pipeline_batch.Item(
                original_png=original,
                edits=run.job.edits,
                report=partial(execution.report_progress, run),
                face_index=run.job.face_index,
                key=run.job.pk,
            )
            pairs.append((run, item))
        by_key = {run.job.pk: run for run, _ in pairs}
        pipeline_batch.run_batch(
            inverter,
            [item for _, item in pairs],
            quality=runs[0].job.quality or "fast",
            refine_steps=settings.REFINE_MAX_STEPS,
            passthrough=(SoftTimeLimitExceeded,),
            report_all=lambda items, stage, pct: execution.report_progress_many(
                [by_key[item.key] for item in items], stage, pct
            ),
        )
        stored = _store_together(pairs)
        for run, item in pairs:
            if isinstance(item.outcome, BaseException):
                settle(run, item.outcome)
                continue
            try:
                outcomes[run.job.pk] = conclude(run, item.outcome, stored.get(run.job.pk))
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:
                settle(run, exc)
    except Exception as exc:  # the whole batch: time limit, model unavailable, database down
        for run in runs:
            if run.job.pk not in outcomes:
                try:
                    settle(run, exc)
                except Exception:  # the database may be the fault: the lease expires
                    logger.warning("job %s: could not be settled", run.job.pk, exc_info=True)
                    outcomes[run.job.pk] = "superseded"
    finally:
        beat.stop()
    return outcomes


def _store_together(pairs) -> dict:
    """Store the outputs of every job of the batch that will keep them (not refused by
    the domain gate) at once: ``{job id: {field: Artifact}}``. Empty when that raises:
    each job then stores its own in :func:`execution.succeed`, so a storage fault fails
    (or retries) each job on its own, as alone."""
    keep = [
        (run, item.outcome)
        for run, item in pairs
        if not isinstance(item.outcome, BaseException)
        and item.outcome is not None
        and policy.out_of_domain_decision(run.job, item.outcome.domain) != "refused"
    ]
    if len(keep) < 2:
        return {}
    try:
        stored = domain_outcome.store_outputs_many([result for _, result in keep])
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.warning("storing the batch's outputs together failed; per job", exc_info=True)
        return {}
    return {run.job.pk: rows for (run, _), rows in zip(keep, stored, strict=True)}


def retry_others(outcomes: dict, own_id, countdown: float) -> None:
    """Publish again every released job of the batch but the message's own (which the
    task retries): their own messages were consumed while they were claimed."""
    from editplatform.celery import app
    from editplatform.jobs.worker_hooks import RUN_EDIT_JOB

    for pk, outcome in outcomes.items():
        if isinstance(outcome, tuple) and str(pk) != str(own_id):
            try:
                app.send_task(
                    RUN_EDIT_JOB,
                    args=[str(pk)],
                    queue="gpu",
                    routing_key="gpu",
                    countdown=countdown,
                    ignore_result=True,
                )
            except Exception:  # the sweeper re-publishes it (JOB_REQUEUE_AFTER_SECONDS)
                logger.warning("job %s: could not be re-published", pk, exc_info=True)
