"""How a job ends badly: fail or cancel it, and say so in the audit log, in one step.

Every refusal and failure on the worker side (tampered parameters, too many attempts,
an unknown model pin, an out-of-domain photo, a fault while running) and every
cancellation is the same two writes: a conditional UPDATE of the job (fenced by the
claim's row condition or the run's lease) and, only if that UPDATE won, the
``job.failed`` / ``job.cancelled`` event — in one transaction, so the log and the row
never disagree. Kept in one place so the payload every such event carries (original,
edits, purpose, code, message) cannot drift between the call sites.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from editplatform.jobs import events
from editplatform.jobs.states import State, transition


def payload_base(job) -> dict:
    """What every job event names: the original, the edits and the purpose."""
    return {"original_sha256": job.original_id, "edits": job.edits, "purpose": job.purpose}


def actor(job) -> str:
    """The audit actor of a worker-side event: the worker that holds (held) the job."""
    return f"worker:{job.worker}" if job.worker else "worker"


def fail_job(
    job,
    code: str,
    message: str,
    *,
    sources: frozenset[State],
    where: dict | None = None,
    fence=None,
    details: dict | None = None,
    before_event: Callable[[], None] | None = None,
    **fields,
) -> bool:
    """Move ``job`` to ``failed`` with ``code``/``message`` and emit ``job.failed``.

    ``where`` (a claim condition) or ``fence`` (a lease id) guard the UPDATE; ``fields``
    are written with it; ``details`` (JSON-safe) join the event's payload;
    ``before_event`` emits events that must precede ``job.failed`` in the same
    transaction (the domain gate's ``job.domain_checked``). False when another process
    moved the job first (nothing is emitted then).
    """
    with transaction.atomic():
        won = transition(
            job,
            State.FAILED,
            sources=sources,
            where=where,
            fence=fence,
            lease_id=None,
            error_code=code[:40],
            error=message[:2000],
            stage="failed",
            **fields,
        )
        if won:
            if before_event is not None:
                before_event()
            events.emit(
                events.JOB_FAILED,
                subject=events.job_subject(job),
                request_id=job.request_id,
                actor_name=actor(job),
                payload={
                    **payload_base(job),
                    "error_code": code,
                    "error": message[:500],
                    **(details or {}),
                },
            )
    return won


def cancel_job(
    job,
    *,
    sources: frozenset[State],
    while_: str,
    where: dict | None = None,
    fence=None,
    details: dict | None = None,
) -> bool:
    """Move ``job`` to ``cancelled`` (the requester asked) and emit ``job.cancelled``.

    ``while_`` says what the job was doing (``queued``, ``running``); guards and
    ``details`` as in :func:`fail_job`.
    """
    with transaction.atomic():
        won = transition(
            job,
            State.CANCELLED,
            sources=sources,
            where=where,
            fence=fence,
            lease_id=None,
            stage="cancelled",
        )
        if won:
            events.emit(
                events.JOB_CANCELLED,
                subject=events.job_subject(job),
                request_id=job.request_id,
                actor_name=actor(job),
                payload={
                    **payload_base(job),
                    "by": "requester",
                    "while": while_,
                    **(details or {}),
                },
            )
    return won
