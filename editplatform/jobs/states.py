"""The job state machine: every state change of an EditJob goes through here.

    submitted -> [awaiting_approval ->] queued -> running -> succeeded | failed | cancelled
                  awaiting_approval -> rejected | cancelled
                  queued -> cancelled | failed | awaiting_approval (approval re-check)
                  running -> queued (transient fault, retried)
                  running -> awaiting_approval (computed, out of domain: outputs held)

A transition is a single conditional UPDATE (`... WHERE state IN (allowed sources)`),
so two processes racing for the same job cannot both win: the loser sees 0 rows and
gets False. Worker-side transitions are additionally fenced by the job's lease id, so a
worker that lost its lease (killed, stalled, superseded) can no longer change the job.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class State(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.REJECTED})
ACTIVE = frozenset(State) - TERMINAL

TRANSITIONS: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.AWAITING_APPROVAL, State.QUEUED, State.CANCELLED}),
    State.AWAITING_APPROVAL: frozenset({State.QUEUED, State.REJECTED, State.CANCELLED}),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED, State.AWAITING_APPROVAL}),
    # running -> awaiting_approval: computed, found out of domain, outputs held (domain gate).
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.QUEUED, State.RUNNING,
                              State.AWAITING_APPROVAL}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.REJECTED: frozenset(),
}

# The timestamp each target state stamps (when entered).
_STAMPS = {
    State.QUEUED: "queued_at",
    State.RUNNING: "started_at",
    State.SUCCEEDED: "finished_at",
    State.FAILED: "finished_at",
    State.CANCELLED: "finished_at",
    State.REJECTED: "finished_at",
}


class IllegalTransition(Exception):
    """A transition the state machine does not allow (a programming error)."""


def sources_of(target: State) -> frozenset[State]:
    """The states from which ``target`` may be entered."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: str, target: str) -> bool:
    return State(target) in TRANSITIONS[State(source)]


def transition(job, target: State, *, sources: frozenset[State] | None = None,
               fence=None, where: dict | None = None, now=None, **fields) -> bool:
    """Move ``job`` to ``target`` if it is still in an allowed source state.

    ``sources`` narrows the allowed sources (it may not widen them); ``fence`` (a
    lease id) fences the update to the worker holding that lease. Extra ``fields`` are written
    in the same UPDATE; ``where`` adds filters. On success the in-memory ``job`` is refreshed with the written
    values and True is returned; if another process moved the job first, False.
    """
    allowed = sources_of(target)
    if sources is not None:
        if not sources <= allowed:
            raise IllegalTransition(f"{sorted(sources - allowed)} -> {target} is not a transition")
        allowed = sources
    now = now or timezone.now()
    values = {"state": target, "updated_at": now, **fields}
    stamp = _STAMPS.get(target)
    if stamp and stamp not in values:
        values[stamp] = now
    filters = {"pk": job.pk, "state__in": list(allowed)}
    if fence is not None:
        filters["lease_id"] = fence
    filters.update(where or {})
    updated = type(job).objects.filter(**filters).update(**values)
    if updated:
        # Re-read what was written (fields may be expressions such as F() + 1).
        job.refresh_from_db(fields=[name for name in values if name != "updated_at"] + ["updated_at"])
    return bool(updated)
