"""Held outputs: who may read them, and destroying them (rejection, expiry, cancellation).

Compute, then release: a job that needs approval is computed like any other, but its
outputs stay *held* until approvers release them. Held outputs are readable only by
eligible approvers (never the requester, even one who is also an approver) and
reviewers. When the job is rejected, expires undecided or is cancelled, the held
outputs are destroyed: the job row lets go of them, their Artifact rows go and their
bytes are deleted from storage once the transaction commits. The hashes stay in the
audit log (`job.held`, `job.outputs_destroyed`), so the record of what was computed
and destroyed survives; bytes shared with another job (identical content) are kept.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from editplatform.accounts.roles import APPROVER, REVIEWER, has_role
from editplatform.jobs import artifacts, events, policy
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import HELD, State, transition

logger = logging.getLogger(__name__)


def may_read_outputs(user, job: EditJob) -> bool:
    """May ``user`` (who can see ``job``) read its outputs now?

    Outputs of a job that is not held are as visible as the job. Held outputs are for
    reviewers and for approvers other than the requester (four eyes), nobody else.
    """
    if job.state != HELD:
        return True
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if has_role(user, REVIEWER):
        return True
    return has_role(user, APPROVER) and job.requester_id != getattr(user, "pk", None)


def _referenced_elsewhere(sha256: str, job: EditJob) -> bool:
    refs = Q(original_id=sha256)
    for (
        kind
    ) in policy.OUTPUT_KINDS:  # reconstruction, edited, latent and the photo pipeline's outputs
        refs |= Q(**{f"{kind}_id": sha256})
    return EditJob.objects.filter(refs).exclude(pk=job.pk).exists() or job.original_id == sha256


def destroy_outputs(
    job: EditJob, *, reason: str, actor=None, actor_name: str | None = None
) -> list[str]:
    """Let go of the job's outputs and delete their bytes after commit; log it.

    Call inside the transaction that ended the job. Returns the hashes whose bytes go.
    """
    hashes = {kind: sha for kind, sha in policy.output_hashes(job).items() if sha}
    if not hashes:
        return []
    EditJob.objects.filter(pk=job.pk).update(
        **dict.fromkeys(policy.OUTPUT_KINDS), updated_at=timezone.now()
    )
    for kind in policy.OUTPUT_KINDS:
        setattr(job, kind, None)
    destroyed, kept = [], []
    for sha in dict.fromkeys(hashes.values()):
        if _referenced_elsewhere(sha, job):
            kept.append(sha)
            continue
        Artifact.objects.filter(sha256=sha).delete()
        destroyed.append(sha)
    for sha in destroyed:
        transaction.on_commit(
            lambda sha=sha: artifacts.discard_blob_if_unreferenced(sha), robust=True
        )
    kwargs = {"actor": actor} if actor is not None else {"actor_name": actor_name or "system"}
    events.emit(
        events.JOB_OUTPUTS_DESTROYED,
        subject=events.job_subject(job),
        request_id=job.request_id,
        subjects=events.artifact_subjects(hashes.values()),
        payload={
            "held_outputs": hashes,
            "destroyed": destroyed,
            "kept_shared": kept,
            "reason": reason,
        },
        **kwargs,
    )
    return destroyed


def expire_held(now=None) -> int:
    """End held jobs nobody decided within APPROVAL_TTL_HOURS; destroy their outputs.

    Run periodically (beat entry ``jobs-expire-held``). Each job ends in its own
    transaction; a job decided meanwhile is left alone (the transition loses).
    """
    now = now or timezone.now()
    ttl = int(settings.APPROVAL_TTL_HOURS)
    cutoff = now - timedelta(hours=ttl)
    expired = 0
    for job in EditJob.objects.filter(state=HELD, held_at__lt=cutoff).order_by("held_at")[:500]:
        with transaction.atomic():
            if not transition(
                job,
                State.EXPIRED,
                sources=frozenset({HELD}),
                stage="expired",
                error_code="approval_expired",
                error=f"no approver decided within {ttl} hours; the held outputs were destroyed",
            ):
                continue
            events.emit(
                events.JOB_EXPIRED,
                subject=events.job_subject(job),
                request_id=job.request_id,
                actor_name="system",
                payload={
                    "held_at": job.held_at.isoformat(),
                    "ttl_hours": ttl,
                    "params_sha256": job.params_sha256,
                },
            )
            destroy_outputs(job, reason="expired", actor_name="system")
        expired += 1
    if expired:
        logger.info("expired %d held job(s) past %d h", expired, ttl)
    return expired
