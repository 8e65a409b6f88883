"""Four-eyes rules: who may decide, how many approvals, what they bind to, expiry.

Compute, then release: the job was already computed and its outputs are held; the
approver decides on what will be released, not on a description of it.

- Only approvers decide, never on their own jobs, and only on held jobs.
- A held job's outputs are released once it holds `APPROVALS_REQUIRED` valid
  approvals from distinct approvers.
- An approval is valid while it is unexpired, its approver still holds the approver
  role, and it binds to the hash of the job's parameters *and* the hash of its held
  outputs as they are *now* (both recomputed from the row: the stored original hash,
  edits and purpose, and the output artifacts it names; a changed row voids it even if
  its stored hash was not updated).
- A rejection needs a reason, ends the job and destroys the held outputs.
- Every decision is an audit event in the same transaction as the decision.
The release re-checks `approval_satisfied` through the jobs layer's approval hook
(registered by ApprovalsConfig.ready()), in the same transaction. Refusals are
DomainErrors: 403 for the four-eyes rule, 409 ("conflict") for a decision that no
longer applies, 400 for a missing reason.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from editplatform.accounts.recovery import suspended_user_ids
from editplatform.accounts.roles import APPROVER, has_role
from editplatform.approvals.audit_actions import JOB_APPROVED, JOB_REJECTED
from editplatform.approvals.models import Decision
from editplatform.core.errors import DomainError
from editplatform.jobs import events, policy
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State


def _conflict(message: str) -> DomainError:
    """A decision that no longer applies (state moved, parameters changed, already decided)."""
    return DomainError(message, "conflict", status=409)


def required_approvals() -> int:
    return int(settings.APPROVALS_REQUIRED)


def current_params_sha256(job: EditJob) -> str:
    """The parameter hash recomputed from the job's fields, never trusted from the row."""
    return policy.job_params_sha256(job)


def current_outputs_sha256(job: EditJob) -> str:
    """The held outputs' hash recomputed from the artifacts the row names now."""
    return policy.outputs_sha256(job)


def valid_approvals(job: EditJob, *, now=None):
    now = now or timezone.now()
    digest = current_params_sha256(job)
    decisions = (
        Decision.objects.filter(
            job=job,
            verdict=Decision.Verdict.APPROVE,
            params_sha256=digest,
            outputs_sha256=current_outputs_sha256(job),
            approver__groups__name=APPROVER.name,
        )
        .exclude(approver_id=job.requester_id)
        .exclude(expires_at__lte=now)
        # an approver whose password or 2FA was reset by someone else no longer counts
        # until the recovery is confirmed by a second admin (accounts.recovery)
        .exclude(approver_id__in=suspended_user_ids())
        .select_related("approver")
    )
    seen, valid = set(), []
    for decision in decisions:
        if decision.approver_id not in seen:
            seen.add(decision.approver_id)
            valid.append(decision)
    return valid


def approval_satisfied(job: EditJob, *, now=None) -> bool:
    """May this job's held outputs be released now? (Re-checked at release.)"""
    if not job.needs_approval:
        return True
    if policy.is_tampered(job):
        return False  # the row was altered after submission
    return len(valid_approvals(job, now=now)) >= required_approvals()


def awaiting_for(user):
    """The approval queue of `user`: others' held jobs they have not decided."""
    if not has_role(user, APPROVER):
        return EditJob.objects.none()
    return (
        EditJob.objects.filter(state=State.AWAITING_APPROVAL)
        .exclude(requester=user)
        .exclude(decisions__approver=user)
        .select_related("requester", "original")
        .order_by("created_at")
    )


def _check_decider(job: EditJob, approver) -> None:
    if not has_role(approver, APPROVER):
        raise PermissionDenied("only approvers may approve or reject jobs")
    if job.requester_id == approver.pk:
        raise DomainError(
            "you cannot decide on your own job (four-eyes rule)", "permission_denied", status=403
        )


def _lock(job: EditJob) -> EditJob:
    locked = EditJob.objects.select_for_update().get(pk=job.pk)
    if locked.state != State.AWAITING_APPROVAL:
        raise _conflict(f"the job is {locked.state}, not held for approval")
    return locked


def approve(
    job: EditJob, approver, *, params_sha256: str, outputs_sha256: str, comment: str = ""
) -> EditJob:
    """Record an approval bound to `params_sha256` and `outputs_sha256` (what the approver saw)."""
    _check_decider(job, approver)
    with transaction.atomic():
        job = _lock(job)
        digest = current_params_sha256(job)
        if params_sha256 != digest or job.params_sha256 != digest:
            raise _conflict(
                "the job's parameters changed since you looked at it; reload and review again"
            )
        outputs = current_outputs_sha256(job)
        if outputs_sha256 != outputs:
            raise _conflict(
                "the held outputs differ from the ones you reviewed; reload and review again"
            )
        ttl = timedelta(hours=settings.APPROVAL_TTL_HOURS)
        try:
            with transaction.atomic():
                decision = Decision.objects.create(
                    job=job,
                    approver=approver,
                    verdict=Decision.Verdict.APPROVE,
                    params_sha256=digest,
                    outputs_sha256=outputs,
                    reason=comment[:2000],
                    expires_at=timezone.now() + ttl,
                )
        except IntegrityError:
            raise _conflict("you have already decided on this job") from None
        count = len(valid_approvals(job))
        events.emit(
            JOB_APPROVED,
            actor=approver,
            subject=events.job_subject(job),
            subjects=events.artifact_subjects(policy.output_hashes(job).values()),
            payload={
                "params_sha256": digest,
                "outputs_sha256": outputs,
                "original_sha256": job.original_id,
                "edits": job.edits,
                "approvals": count,
                "required": required_approvals(),
                "expires": decision.expires_at.isoformat(),
                "comment": comment[:2000],
            },
        )
        if count >= required_approvals():
            job_services.release_approved(
                job, approver=approver, params_sha256=digest, outputs_sha256=outputs
            )
    job.refresh_from_db()
    return job


def reject(job: EditJob, approver, *, reason: str) -> EditJob:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("a rejection needs a reason", "invalid", field="reason")
    _check_decider(job, approver)
    with transaction.atomic():
        job = _lock(job)
        digest = current_params_sha256(job)
        try:
            with transaction.atomic():
                Decision.objects.create(
                    job=job,
                    approver=approver,
                    verdict=Decision.Verdict.REJECT,
                    params_sha256=digest,
                    outputs_sha256=current_outputs_sha256(job),
                    reason=reason[:2000],
                )
        except IntegrityError:
            raise _conflict("you have already decided on this job") from None
        events.emit(
            JOB_REJECTED,
            actor=approver,
            subject=events.job_subject(job),
            payload={
                "params_sha256": digest,
                "original_sha256": job.original_id,
                "edits": job.edits,
                "reason": reason[:2000],
            },
        )
        job_services.close_rejected(job, reason=reason, approver=approver)
    job.refresh_from_db()
    return job
