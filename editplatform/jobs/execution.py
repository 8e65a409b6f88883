"""Worker-side bookkeeping of a job run: claim, progress, heartbeat, finish.

Delivery is at-least-once (acks late, redelivery, the sweeper's re-enqueues), so the
effects must be exactly-once. That rests on a *lease*: claiming a job writes a fresh
``lease_id`` in one conditional UPDATE (from ``queued``, or from ``running`` when the
previous holder's heartbeat is older than JOB_LEASE_SECONDS: a dead worker), and every
later write of the run — progress, success, failure, cancellation — is fenced by that
lease id. A duplicate delivery finds the job running under a live lease or finished and
does nothing; a worker that lost its lease cannot commit. Outputs are content-addressed,
so a superseded run that already wrote bytes leaves nothing extra behind.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from editplatform.jobs import endings, events, policy, release_hook
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State, transition

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the job over (or it was finished elsewhere): stop quietly."""


class JobCancelled(Exception):
    """The requester cancelled the job while it ran."""


@dataclass
class Run:
    """One worker's hold on one job."""

    job: EditJob
    lease_id: uuid.UUID
    attempt: int
    heartbeat: Heartbeat | None = field(default=None, repr=False)


_payload_base = endings.payload_base
_actor = endings.actor


def _refuse_tampered(job: EditJob, where: dict) -> None:
    """The row no longer matches the parameter hash it was submitted with: never run it."""
    message = "the job's parameters no longer match the hash they were submitted with"
    if endings.fail_job(
        job,
        "parameters_tampered",
        message,
        sources=frozenset({State(job.state)}),
        where=where,
        details={"params_sha256": job.params_sha256},
    ):
        logger.error("job %s refused by the worker: %s", job.pk, message)


def claim_condition(job: EditJob, now=None) -> dict | None:
    """The row condition under which a delivery may take ``job``; None: not for this delivery.

    A queued job is taken as it is; a running one only once its worker stopped
    heart-beating for JOB_LEASE_SECONDS (killed, host lost), and only if nobody took it
    over meanwhile (same lease and heartbeat). Shared with the model-pin refusal so a job
    is refused under exactly the rules it would have been claimed under.
    """
    now = now or timezone.now()
    if job.state == State.QUEUED:
        return {}
    if (
        job.state == State.RUNNING
        and job.heartbeat_at
        and job.heartbeat_at < now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    ):
        logger.warning(
            "job %s: lease of %s expired (last heartbeat %s); taking over",
            job.pk,
            job.worker,
            job.heartbeat_at,
        )
        return {"lease_id": job.lease_id, "heartbeat_at": job.heartbeat_at}
    return None


def claim(job_id, worker: str, catalog) -> Run | None:
    """Take the job for this worker, or return None when there is nothing to run."""
    job = EditJob.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("job %s does not exist (deleted?); message dropped", job_id)
        return None
    now = timezone.now()
    where = claim_condition(job, now)
    if where is None:
        logger.info("job %s is %s; nothing to do for this delivery", job.pk, job.state)
        return None

    if job.cancel_requested:
        endings.cancel_job(job, sources=frozenset({State(job.state)}), where=where, while_="queued")
        return None
    if not policy.may_run(job, catalog):
        _refuse_tampered(job, where)
        return None
    # The catalog may have marked an edit sensitive since submission: hold its outputs.
    hold = policy.needs_hold(job, catalog)
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        endings.fail_job(
            job,
            "too_many_attempts",
            f"gave up after {job.attempts} attempts (the worker died or timed out each time)",
            sources=frozenset({State(job.state)}),
            where=where,
            details={"attempts": job.attempts},
        )
        return None

    lease_id = uuid.uuid4()
    with transaction.atomic():
        won = transition(
            job,
            State.RUNNING,
            sources=frozenset({State(job.state)}),
            where=where,
            now=now,
            lease_id=lease_id,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            worker=worker[:200],
            progress=0,
            stage="starting",
            error="",
            error_code="",
            needs_approval=hold,
        )
        if not won:
            return None
        events.emit(
            events.JOB_STARTED,
            subject=events.job_subject(job),
            request_id=job.request_id,
            actor_name=_actor(job),
            payload={**_payload_base(job), "attempt": job.attempts, "worker": worker},
        )
    return Run(job=job, lease_id=lease_id, attempt=job.attempts)


def report_progress(run: Run, stage: str, percent: int) -> None:
    """Write progress (and a heartbeat); raise if cancelled or the lease is gone."""
    now = timezone.now()
    updated = EditJob.objects.filter(
        pk=run.job.pk,
        lease_id=run.lease_id,
        state=State.RUNNING,
        cancel_requested=False,
    ).update(progress=max(0, min(99, percent)), stage=stage[:40], heartbeat_at=now, updated_at=now)
    if not updated:
        _raise_why_stopped(run)


def report_progress_many(runs: list[Run], stage: str, percent: int) -> dict:
    """:func:`report_progress` for every run of a batch in one fenced UPDATE.

    Returns ``{job id: JobCancelled() | LeaseLost()}`` for the runs that must stop (their
    rows were not written); empty when all go on. One round trip per stage for the
    whole batch instead of one per job: progress rows are most of a small job's fixed
    cost.
    """
    if not runs:
        return {}
    now = timezone.now()
    fence = Q()
    for run in runs:
        fence |= Q(pk=run.job.pk, lease_id=run.lease_id)
    updated = EditJob.objects.filter(fence, state=State.RUNNING, cancel_requested=False).update(
        progress=max(0, min(99, percent)), stage=stage[:40], heartbeat_at=now, updated_at=now
    )
    if updated == len(runs):
        return {}
    current = {
        row["pk"]: row
        for row in EditJob.objects.filter(pk__in=[r.job.pk for r in runs]).values(
            "pk", "state", "lease_id", "cancel_requested"
        )
    }
    stopped = {}
    for run in runs:
        row = current.get(run.job.pk)
        if row and row["lease_id"] == run.lease_id and row["state"] == State.RUNNING:
            if row["cancel_requested"]:
                stopped[run.job.pk] = JobCancelled()
            continue  # written (or written now by our own progress): goes on
        stopped[run.job.pk] = LeaseLost()
    return stopped


def _raise_why_stopped(run: Run) -> None:
    current = (
        EditJob.objects.filter(pk=run.job.pk)
        .values("state", "lease_id", "cancel_requested")
        .first()
    )
    if current and current["lease_id"] == run.lease_id and current["cancel_requested"]:
        raise JobCancelled()
    raise LeaseLost()


def succeed(run: Run, result, *, decision: str = "released", stored: dict | None = None) -> bool:
    """Store outputs and commit success once (or hold them); False when the lease was lost.

    A job that needs approval is not released here: it enters ``awaiting_approval``
    with its outputs held (``job.held``), visible only to approvers and reviewers.
    ``decision`` is what the domain gate's policy made of the job's report (``released``,
    ``flagged``, ``held``): ``held`` (out of domain under JOB_OUT_OF_DOMAIN=approve) holds
    the job too and marks it as needing approval. It goes into ``job.domain_checked``,
    committed with the success or hold. ``stored``: the outputs' Artifact rows when the
    caller stored a whole batch's outputs at once (content-addressed: the same rows).
    """
    from editplatform.jobs import domain_outcome

    if stored is None:
        stored = domain_outcome.store_outputs(result)
    job = run.job
    with transaction.atomic():
        hold = job.needs_approval or decision == "held"
        won = transition(
            job,
            State.AWAITING_APPROVAL if hold else State.SUCCEEDED,
            sources=frozenset({State.RUNNING}),
            fence=run.lease_id,
            **stored,
            metrics=result.metrics,
            domain_report=result.domain,
            needs_approval=hold,
            model_version=result.model_version,
            timings=result.timings,
            progress=100,
            stage="held for approval" if hold else "done",
            lease_id=None,
        )
        if not won:
            return False
        domain_outcome.emit_checked(job, result, decision, stored, actor_name=_actor(job))
        action = events.JOB_HELD if hold else events.JOB_SUCCEEDED
        outputs = [a.sha256 for a in stored.values()]
        events.emit(
            action,
            subject=events.job_subject(job),
            request_id=job.request_id,
            actor_name=_actor(job),
            subjects=events.artifact_subjects(outputs),
            payload={
                **_payload_base(job),
                "latent_sha256": stored["latent"].sha256,
                "outputs": {kind: a.sha256 for kind, a in stored.items() if kind != "latent"},
                "model_version": result.model_version,
                "metrics": result.metrics,
                "domain": {"in_domain": result.domain.get("in_domain"), "decision": decision},
                "attempt": run.attempt,
                **({"outputs_sha256": policy.outputs_sha256(job)} if hold else {}),
            },
        )
        if not hold:
            release_hook.after_release(job)
    return True


def fail(run: Run, code: str, message: str, **details) -> bool:
    """Fail the job with ``code``; ``details`` (JSON-safe) join the audit payload."""
    return endings.fail_job(
        run.job,
        code,
        message,
        sources=frozenset({State.RUNNING}),
        fence=run.lease_id,
        details={"attempt": run.attempt, **details},
    )


def cancelled(run: Run) -> bool:
    """The requester cancelled the running job: end it under the run's lease."""
    return endings.cancel_job(
        run.job,
        sources=frozenset({State.RUNNING}),
        fence=run.lease_id,
        while_="running",
        details={"attempt": run.attempt},
    )


def release_for_retry(run: Run, message: str) -> bool:
    """Give the job back to the queue after a transient fault (the task retries it)."""
    now = timezone.now()
    return transition(
        run.job,
        State.QUEUED,
        sources=frozenset({State.RUNNING}),
        fence=run.lease_id,
        lease_id=None,
        stage="retrying",
        error=message[:2000],
        enqueued_at=now,
        now=now,
    )


class Heartbeat(threading.Thread):
    """Refreshes the leases of a run (or of every run of a worker's batch) while a long
    step (a big encoder pass) runs without progress."""

    def __init__(self, runs: Run | list[Run], interval: float):
        runs = [runs] if isinstance(runs, Run) else list(runs)
        super().__init__(name=f"heartbeat-{runs[0].job.pk}", daemon=True)
        self.runs = runs
        self.interval = interval
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                close_old_connections()
                now = timezone.now()
                for held in self.runs:
                    n = EditJob.objects.filter(
                        pk=held.job.pk, lease_id=held.lease_id, state=State.RUNNING
                    ).update(heartbeat_at=now)
                    if not n:
                        self.lost = True
        except Exception:  # the next progress write will notice a real problem
            logger.warning("heartbeat for job %s failed", self.runs[0].job.pk, exc_info=True)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)


def start_heartbeat(runs: Run | list[Run]) -> Heartbeat:
    """One heartbeat thread for a run or for all the runs of a batch."""
    beat = Heartbeat(runs, interval=max(0.5, settings.JOB_LEASE_SECONDS / 4))
    beat.start()
    for held in beat.runs:
        held.heartbeat = beat
    return beat
