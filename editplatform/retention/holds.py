"""Legal holds: a reviewer freezes a job's artifacts; lifting takes two people.

The hold is enforced where shredding happens (:func:`hold_guard`, registered with
:mod:`editplatform.jobs.shredding` at start-up), so retention, erasure requests and any
later caller are all blocked alike. Lifting is four-eyes like approvals: one reviewer
asks with a reason, another confirms; the same person cannot do both (also a database
constraint).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.log import append_event
from editplatform.accounts.roles import REVIEWER, has_role
from editplatform.core.errors import DomainError
from editplatform.jobs.models import EditJob
from editplatform.retention.audit_actions import HOLD_LIFT_REQUESTED, HOLD_LIFTED, HOLD_PLACED
from editplatform.retention.models import LegalHold


def hold_guard(artifact, jobs: list[EditJob]) -> str:
    """The shredding guard: why ``artifact`` is held ("" when it is not)."""
    hold = (
        LegalHold.objects.active()
        .filter(job_id__in=[job.pk for job in jobs])
        .order_by("placed_at")
        .first()
    )
    return f"legal hold {hold.pk} on job {hold.job_id} ({hold.reason})" if hold else ""


def _require_reviewer(user) -> None:
    if not has_role(user, REVIEWER):
        raise DomainError("only compliance reviewers manage legal holds", "forbidden", 403)


def _reason(text: str, field: str = "reason") -> str:
    text = (text or "").strip()
    if not text:
        raise DomainError("a legal hold needs a reason", "reason_required", 400, field)
    return text


def place(job: EditJob, user, reason: str) -> LegalHold:
    _require_reviewer(user)
    reason = _reason(reason)
    with transaction.atomic():
        hold = LegalHold.objects.create(job=job, reason=reason, placed_by=user)
        append_event(
            HOLD_PLACED,
            actor=user,
            subject=f"job:{job.pk}",
            subjects=[f"hold:{hold.pk}"],
            payload={"hold": hold.pk, "reason": reason},
        )
    return hold


def request_lift(hold: LegalHold, user, reason: str) -> LegalHold:
    """First pair of eyes: ask to lift (with a reason); the hold stays active."""
    _require_reviewer(user)
    reason = _reason(reason, "lift_reason")
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if not hold.active:
            raise DomainError("the legal hold is already lifted", "hold_lifted", 409)
        hold.lift_reason, hold.lift_requested_by = reason, user
        hold.lift_requested_at = timezone.now()
        hold.save(update_fields=["lift_reason", "lift_requested_by", "lift_requested_at"])
        append_event(
            HOLD_LIFT_REQUESTED,
            actor=user,
            subject=f"job:{hold.job_id}",
            subjects=[f"hold:{hold.pk}"],
            payload={"hold": hold.pk, "reason": reason},
        )
    return hold


def confirm_lift(hold: LegalHold, user) -> LegalHold:
    """Second pair of eyes: lift the hold another reviewer asked to lift."""
    _require_reviewer(user)
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if not hold.active:
            raise DomainError("the legal hold is already lifted", "hold_lifted", 409)
        if hold.lift_requested_by_id is None:
            raise DomainError(
                "nobody asked to lift this hold yet: a reviewer asks, another confirms",
                "lift_not_requested",
                409,
            )
        if hold.lift_requested_by_id == user.pk:
            raise DomainError(
                "lifting a legal hold needs a second reviewer: you asked for it yourself",
                "four_eyes",
                403,
            )
        hold.lifted_by, hold.lifted_at = user, timezone.now()
        hold.save(update_fields=["lifted_by", "lifted_at"])
        append_event(
            HOLD_LIFTED,
            actor=user,
            subject=f"job:{hold.job_id}",
            subjects=[f"hold:{hold.pk}"],
            payload={
                "hold": hold.pk,
                "requested_by": hold.lift_requested_by.get_username(),
                "reason": hold.lift_reason,
            },
        )
    return hold
