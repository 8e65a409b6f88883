"""Crypto-shredding: destroy an artifact's data key and ciphertext, keep its record.

Why not delete rows: jobs reference artifacts and the audit log commits to their
hashes; deleting either would break the record and its proofs. Shredding deletes the
wrapped data key (:class:`~editplatform.jobs.models.ArtifactKey`, with the salt that
keys what the log records about the artifact, :mod:`editplatform.jobs.keyed_ids`) in the
transaction that marks the artifact erased (when, why, under which request) and appends an
``artifact.shredded`` event; the ciphertext is deleted from storage after commit. Any
copy of the ciphertext left behind (a storage backup) is undecryptable once the key is
gone.

Who may shred is the caller's business (retention, data-subject requests in
``editplatform.retention``); what may block it is not: apps above register *guards*
(:func:`register_guard`, e.g. legal hold) that are asked for every artifact, so no
path around them exists in this layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from editplatform.core.errors import DomainError
from editplatform.jobs import artifacts, events, policy
from editplatform.jobs.models import Artifact, ArtifactKey, EditJob

logger = logging.getLogger(__name__)

JOB_ARTIFACT_FIELDS = ("original", *policy.OUTPUT_KINDS, "marked", "marked_result")
"""Every EditJob field that names an artifact."""

# guard(artifact, jobs) -> a reason the artifact must not be shredded now, or "".
_guards: list[Callable[[Artifact, list[EditJob]], str]] = []


class ShredBlocked(DomainError):
    def __init__(self, message: str):
        super().__init__(message, code="shred_blocked", status=409)


def register_guard(guard: Callable[[Artifact, list[EditJob]], str]) -> None:
    """Ask ``guard`` before every shredding (idempotent registration)."""
    if guard not in _guards:
        _guards.append(guard)


def jobs_of(sha256: str) -> list[EditJob]:
    """Every job that names the artifact in any of its fields."""
    condition = Q()
    for field in JOB_ARTIFACT_FIELDS:
        condition |= Q(**{f"{field}_id": sha256})
    return list(EditJob.objects.filter(condition).order_by("created_at"))


def artifacts_of(job: EditJob) -> dict[str, str]:
    """{field: sha256} of every artifact the job names."""
    return {f: getattr(job, f"{f}_id") for f in JOB_ARTIFACT_FIELDS if getattr(job, f"{f}_id")}


def blocked_by(artifact: Artifact, jobs: list[EditJob]) -> str:
    """Why a guard refuses shredding ``artifact`` now ("" when none does)."""
    for guard in _guards:
        reason = guard(artifact, jobs)
        if reason:
            return reason
    return ""


def shred(
    artifact: Artifact | str,
    *,
    reason: str,
    ref: str,
    actor=None,
    actor_name: str | None = None,
) -> bool:
    """Shred one artifact; False when it was already erased. Raises :class:`ShredBlocked`.

    ``reason`` is the human why ("retention: originals 30 days after the job ended",
    "data-subject request 12"), ``ref`` the machine one (``retention:original``,
    ``dsr:<id>``). Runs in its own transaction (or the caller's).
    """
    sha = artifact if isinstance(artifact, str) else artifact.sha256
    with transaction.atomic():
        row = Artifact.objects.select_for_update().get(pk=sha)
        if row.erased_at is not None:
            return False
        jobs = jobs_of(sha)
        blocked = blocked_by(row, jobs)
        if blocked:
            raise ShredBlocked(f"artifact {sha[:12]} cannot be shredded: {blocked}")
        key = ArtifactKey.objects.filter(pk=sha).first()
        now = timezone.now()
        Artifact.objects.filter(pk=sha).update(
            erased_at=now, erasure_reason=reason[:200], erasure_ref=ref[:100]
        )
        row.erased_at, row.erasure_reason, row.erasure_ref = now, reason[:200], ref[:100]
        kinds = {
            str(job.pk): [f for f in JOB_ARTIFACT_FIELDS if getattr(job, f"{f}_id") == sha]
            for job in jobs
        }
        first_kind = next(iter(kinds.values()), ["artifact"])[0]
        kwargs = {"actor": actor} if actor is not None else {"actor_name": actor_name or "system"}
        events.emit(
            events.ARTIFACT_SHREDDED,
            subject=events.job_subject(jobs[0]) if jobs else events.artifact_subject(sha),
            subjects=[events.job_subject(j) for j in jobs[1:]] + [events.artifact_subject(sha)],
            payload={
                "kind": first_kind,
                "kinds_by_job": kinds,
                # The keyed commitment (editplatform.core.crypto.commitment): its key died
                # with the data key, so it cannot be recomputed for a copy of the bytes.
                "commitment": key.commitment if key else None,
                "key_id": key.key_id if key else None,
                "kek_id": key.kek_id if key else None,
                "was_encrypted": key is not None and key.sealed_at is not None,
                "reason": reason,
                "ref": ref,
                "erased_at": now.isoformat(),
            },
            **kwargs,
        )
        # After the event: while the key row exists the log's filter (keyed_ids) records
        # the artifact as its commitment, never its plain hash; then the key goes.
        ArtifactKey.objects.filter(pk=sha).delete()
        transaction.on_commit(lambda: artifacts.delete_blobs(sha), robust=True)
    logger.info("shredded artifact %s (%s)", sha[:12], ref)
    return True


def shred_job(job: EditJob, *, reason: str, ref: str, actor=None, actor_name=None) -> list[str]:
    """Shred every artifact of ``job`` (all or none: one transaction); the hashes shredded."""
    done = []
    with transaction.atomic():
        for sha in dict.fromkeys(artifacts_of(job).values()):
            if shred(sha, reason=reason, ref=ref, actor=actor, actor_name=actor_name):
                done.append(sha)
    return done


def shred_many(hashes: Iterable[str], **kwargs) -> list[str]:
    return [sha for sha in dict.fromkeys(hashes) if shred(sha, **kwargs)]
