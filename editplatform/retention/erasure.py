"""Data-subject erasure requests: record, approve with a second reviewer, shred, certify.

1. A reviewer records who asked and which jobs: by job id, by requester account, or by
   the "was this made here?" lookup of an image the person supplies
   (:func:`jobs_for_photo`, the provenance app's :func:`check_image`).
2. A *different* reviewer approves. In one transaction every artifact of those jobs is
   crypto-shredded (:func:`editplatform.jobs.shredding.shred_job`); a legal hold on any
   of them refuses the whole request (nothing shredded).
3. A certificate is issued: the request, the jobs, every artifact (kind, keyed
   commitment, when and under what it was erased) with the ``artifact.shredded`` event's
   inclusion proof against a signed checkpoint, signed with the audit log's key. Its
   hash is itself logged (``erasure.certified``).

The certificate deliberately omits the artifacts' plain SHA-256: it is handed to the
person, and the keyed commitment is what cannot be used to confirm a copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit import log as audit_log
from audit import tlog
from audit.checkpoint import CheckpointError, Verifier, open_checkpoint
from audit.log import append_event
from audit.models import AuditEvent
from audit.signing import get_signer
from editplatform.accounts.roles import REVIEWER, has_role
from editplatform.core.errors import DomainError
from editplatform.jobs import keyed_ids, shredding
from editplatform.jobs.models import EditJob
from editplatform.provenance import check_keys
from editplatform.retention.audit_actions import (
    ERASURE_APPROVED,
    ERASURE_CERTIFIED,
    ERASURE_PHOTO_LOOKUP,
    ERASURE_REQUESTED,
)
from editplatform.retention.models import ErasureRequest

CERTIFICATE_TYPE = "styleledger.erasure-certificate/v1"
SIGNING_CONTEXT = b"styleledger erasure certificate v1\n"


def _require_reviewer(user) -> None:
    if not has_role(user, REVIEWER):
        raise DomainError("only compliance reviewers handle erasure requests", "forbidden", 403)


def find_jobs(job_ids=(), requester: str = "") -> list[EditJob]:
    """The jobs a request names (400 naming the first id or account that is not found)."""
    found: dict[str, EditJob] = {}
    for raw in job_ids:
        text = str(raw).strip()
        if not text:
            continue
        try:
            job = EditJob.objects.get(pk=uuid.UUID(text))
        except (ValueError, EditJob.DoesNotExist):
            raise DomainError(f"no job with id {text!r}", "unknown_job", 400, "jobs") from None
        found[str(job.pk)] = job
    if requester:
        user = get_user_model().objects.filter(username=requester.strip()).first()
        if user is None:
            raise DomainError(
                f"no account named {requester!r}", "unknown_requester", 400, "requester"
            )
        for job in EditJob.objects.filter(requester=user):
            found[str(job.pk)] = job
    return list(found.values())


@dataclass(frozen=True)
class PhotoLookup:
    """What the photo lookup found: candidate jobs (best first) with their evidence."""

    candidates: list[tuple[EditJob, list[str]]]
    check_seq: int  # the provenance.checked event (the image named by a keyed hash)
    lookup_seq: int  # the erasure.photo_lookup event (names the candidate jobs)


def lookup_photo(data: bytes, *, actor) -> PhotoLookup:
    """Jobs the provenance lookup ties to an image (its watermark, manifest, fingerprints),
    as candidates a reviewer may add to a request. Reviewers only (403 otherwise).

    It finds jobs whose *outputs* the image is (or derives from), not other photos of
    the same person: the platform does no face recognition. Bad input is a DomainError
    (4xx) before anything is recorded; a lookup is two audit events: the check
    (``provenance.checked``, the image by a keyed hash) and ``erasure.photo_lookup``,
    which names the candidate jobs as subjects so each job's trail shows the lookup.
    """
    from editplatform.provenance.services import check_image

    _require_reviewer(actor)
    result = check_image(data, actor=actor, channel="erasure-request")
    rows = {
        str(job.pk): job
        for job in EditJob.objects.select_related("requester").filter(
            pk__in=[j["job_id"] for j in result.jobs]
        )
    }
    candidates = [
        (rows[j["job_id"]], list(j.get("evidence", []))) for j in result.jobs if j["job_id"] in rows
    ]
    with transaction.atomic():
        event = append_event(
            ERASURE_PHOTO_LOOKUP,
            actor=actor,
            subject="erasure:lookup",
            subjects=[f"job:{job.pk}" for job, _ in candidates],
            payload={
                "check_seq": result.audit_seq,
                "candidates": [str(job.pk) for job, _ in candidates],
            },
        )
    return PhotoLookup(candidates, result.audit_seq, event.seq)


def jobs_for_photo(data: bytes, *, actor) -> list[EditJob]:
    """The candidate jobs of :func:`lookup_photo` (the page adds them all to the request)."""
    return [job for job, _ in lookup_photo(data, actor=actor).candidates]


def record(user, *, subject: str, jobs: list[EditJob], note: str = "") -> ErasureRequest:
    _require_reviewer(user)
    subject = (subject or "").strip()
    if not subject:
        raise DomainError("name who asked for the erasure", "subject_required", 400, "subject")
    if not jobs:
        raise DomainError("the request names no job", "no_jobs", 400, "jobs")
    with transaction.atomic():
        request = ErasureRequest.objects.create(subject=subject[:200], note=note, recorded_by=user)
        request.jobs.set(jobs)
        append_event(
            ERASURE_REQUESTED,
            actor=user,
            subject=f"erasure:{request.pk}",
            subjects=[f"job:{job.pk}" for job in jobs],
            payload={"subject": subject, "note": note, "jobs": sorted(str(j.pk) for j in jobs)},
        )
    return request


def approve(request: ErasureRequest, user) -> ErasureRequest:
    """Second reviewer: shred every artifact of the request's jobs, then certify."""
    _require_reviewer(user)
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(pk=request.pk)
        if request.state != ErasureRequest.State.RECORDED:
            raise DomainError("the request was already carried out", "already_erased", 409)
        if request.recorded_by_id == user.pk:
            raise DomainError(
                "an erasure needs a second reviewer: you recorded this request yourself",
                "four_eyes",
                403,
            )
        jobs = list(request.jobs.order_by("created_at"))
        reason = f"data-subject request {request.pk} ({request.subject})"
        shredded = []
        for job in jobs:  # a legal hold raises ShredBlocked: the whole request rolls back
            shredded += shredding.shred_job(job, reason=reason, ref=request.ref, actor=user)
        # the salts of "was this made here?" checks that found these jobs: after this, a
        # copy of the person's photo cannot be matched against those checks' events
        check_keys.shred_for_jobs([job.pk for job in jobs])
        request.state, request.approved_by = ErasureRequest.State.ERASED, user
        request.approved_at = timezone.now()
        request.save(update_fields=["state", "approved_by", "approved_at"])
        append_event(
            ERASURE_APPROVED,
            actor=user,
            subject=f"erasure:{request.pk}",
            subjects=[f"job:{job.pk}" for job in jobs],
            payload={
                "recorded_by": request.recorded_by.get_username(),
                "jobs": [str(job.pk) for job in jobs],
                "artifacts_shredded": len(shredded),
            },
        )
    issue_certificate(request)
    return request


def _shred_event(job: EditJob, field: str) -> AuditEvent | None:
    """The latest ``artifact.shredded`` event of ``job``'s artifact ``field``.

    Found through the job's subject and the event's ``kinds_by_job``: since the cut-over
    to keyed ids (editplatform.jobs.keyed_ids) its artifact subject is a commitment.
    """
    found = None
    for event in keyed_ids.shred_events(job):
        if field in event.payload.get("kinds_by_job", {}).get(str(job.pk), []):
            found = event
    return found


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def issue_certificate(request: ErasureRequest) -> dict:
    """Build, sign, store and log the request's certificate (after the shredding committed)."""
    checkpoint = audit_log.make_checkpoint()
    items = []
    for job in request.jobs.order_by("created_at"):
        for field in shredding.artifacts_of(job):
            event = _shred_event(job, field)
            if event is None or event.seq >= checkpoint.size:
                raise DomainError(
                    f"artifact {field} of job {job.pk} has no shredding event in the log",
                    "not_erased",
                    409,
                )
            proof = audit_log.inclusion_proof(event.seq, checkpoint.size)
            items.append(
                {
                    "job": str(job.pk),
                    "kind": field,
                    "commitment": event.payload.get("commitment"),
                    "erased_at": event.payload.get("erased_at"),
                    "erased_under": event.payload.get("reason"),
                    "ref": event.payload.get("ref"),
                    "event_seq": event.seq,
                    "leaf_hash": bytes(event.leaf_hash).hex(),
                    "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
                }
            )
    body = {
        "type": CERTIFICATE_TYPE,
        "request": {
            "id": request.pk,
            "subject": request.subject,
            "note": request.note,
            "recorded_by": request.recorded_by.get_username(),
            "recorded_at": request.recorded_at.isoformat(),
            "approved_by": request.approved_by.get_username(),
            "approved_at": request.approved_at.isoformat(),
        },
        "jobs": [
            str(pk) for pk in request.jobs.order_by("created_at").values_list("pk", flat=True)
        ],
        "artifacts": items,
        "log": {
            "tree_size": checkpoint.size,
            "root_hash": base64.b64encode(bytes(checkpoint.root_hash)).decode(),
            "checkpoint": checkpoint.note,
        },
        "issued_at": timezone.now().isoformat(),
    }
    signer = get_signer()
    signature = signer.sign(SIGNING_CONTEXT + _canonical(body))
    certificate = {
        **body,
        "signature": {
            "algorithm": "ed25519",
            "key": signer.verifier.vkey(),
            "value": base64.b64encode(signature).decode(),
        },
    }
    with transaction.atomic():
        ErasureRequest.objects.filter(pk=request.pk).update(certificate=certificate)
        append_event(
            ERASURE_CERTIFIED,
            actor_name="retention",
            subject=f"erasure:{request.pk}",
            payload={
                "certificate_sha256": hashlib.sha256(_canonical(certificate)).hexdigest(),
                "artifacts": len(items),
                "tree_size": checkpoint.size,
            },
        )
    request.certificate = certificate
    return certificate


class CertificateError(ValueError):
    """An erasure certificate that does not verify."""


def verify_certificate(certificate: dict, vkey: str) -> None:
    """Check the signature (by the log key ``vkey``), the checkpoint and every proof.

    Pure: needs neither Django settings nor the database. Raises CertificateError.
    """
    body = {k: v for k, v in certificate.items() if k != "signature"}
    signature = certificate.get("signature") or {}
    verifier = Verifier.from_vkey(vkey)
    try:
        raw = base64.b64decode(signature.get("value", ""), validate=True)
    except ValueError:
        raise CertificateError("malformed signature") from None
    if not verifier.verify(raw, SIGNING_CONTEXT + _canonical(body)):
        raise CertificateError("the certificate's signature does not verify")
    log = body["log"]
    try:
        checkpoint = open_checkpoint(log["checkpoint"], verifier)
    except CheckpointError as exc:
        raise CertificateError(f"the checkpoint does not verify: {exc}") from None
    root = base64.b64decode(log["root_hash"])
    if checkpoint.size != log["tree_size"] or checkpoint.root_hash != root:
        raise CertificateError("the certificate's tree does not match its signed checkpoint")
    for item in body["artifacts"]:
        try:
            tlog.verify_inclusion(
                bytes.fromhex(item["leaf_hash"]),
                item["event_seq"],
                checkpoint.size,
                [base64.b64decode(h) for h in item["inclusion_proof"]],
                root,
            )
        except (tlog.ProofError, ValueError) as exc:
            raise CertificateError(f"inclusion proof of event {item['event_seq']}: {exc}") from None
