"""The job state machine: every state change of an EditJob goes through here.

    submitted -> queued -> running -> succeeded | failed | cancelled
                           running -> awaiting_approval ("held": computed, outputs held)
                                      awaiting_approval -> succeeded (released by approval)
                                                         | rejected | expired | cancelled
                                                           (held outputs destroyed)
                           running -> queued (transient fault, retried)

Compute, then release: a job that needs approval runs like any other, but its
outputs are *held* (state ``awaiting_approval``, ``held_at`` stamped) where only
eligible approvers and reviewers can see them. Approval releases them (``succeeded``);
rejection or expiry (APPROVAL_TTL_HOURS after ``held_at``) destroys their bytes. The
approver therefore decides on the result that will be released, not on a description.

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
    # Computed, outputs held until an approver releases them (the value predates
    # "compute, then release" and is kept so the API's state names do not change).
    AWAITING_APPROVAL = "awaiting_approval", "Held for approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


TERMINAL = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.REJECTED, State.EXPIRED}
)
HELD = State.AWAITING_APPROVAL
ACTIVE = frozenset(State) - TERMINAL

TRANSITIONS: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.QUEUED, State.CANCELLED}),
    State.AWAITING_APPROVAL: frozenset(
        {State.SUCCEEDED, State.REJECTED, State.EXPIRED, State.CANCELLED}
    ),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    State.RUNNING: frozenset(
        {
            State.SUCCEEDED,
            State.AWAITING_APPROVAL,
            State.FAILED,
            State.CANCELLED,
            State.QUEUED,
            State.RUNNING,
        }
    ),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.REJECTED: frozenset(),
    State.EXPIRED: frozenset(),
}

# The timestamp each target state stamps (when entered).
_STAMPS = {
    State.AWAITING_APPROVAL: "held_at",
    State.QUEUED: "queued_at",
    State.RUNNING: "started_at",
    State.SUCCEEDED: "finished_at",
    State.FAILED: "finished_at",
    State.CANCELLED: "finished_at",
    State.REJECTED: "finished_at",
    State.EXPIRED: "finished_at",
}


class IllegalTransition(Exception):
    """A transition the state machine does not allow (a programming error)."""


def sources_of(target: State) -> frozenset[State]:
    """The states from which ``target`` may be entered."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: str, target: str) -> bool:
    return State(target) in TRANSITIONS[State(source)]


def transition(
    job,
    target: State,
    *,
    sources: frozenset[State] | None = None,
    fence=None,
    where: dict | None = None,
    now=None,
    **fields,
) -> bool:
    """Move ``job`` to ``target`` if it is still in an allowed source state.

    ``sources`` narrows the allowed sources (it may not widen them); ``fence`` (a
    lease id) fences the update to the worker holding that lease. Extra ``fields`` are written
    in the same UPDATE; ``where`` adds filters. On success the in-memory ``job`` is refreshed
    with the written values and True is returned; if another process moved the job first,
    False.
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
        job.refresh_from_db(
            fields=[name for name in values if name != "updated_at"] + ["updated_at"]
        )
    return bool(updated)
