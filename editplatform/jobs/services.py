"""Business rules of edit jobs on the web side: submit, enqueue, cancel, approve.

Views (portal and API) stay thin: they parse input, call these functions and map the
typed errors below to HTTP answers. Every state change goes through
:mod:`editplatform.jobs.states` and writes its audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from editplatform.accounts.roles import INTEGRATION, REQUESTER, has_role
from editplatform.core.middleware import current_request_id
from editplatform.jobs import artifacts, engine, events, policy
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import ACTIVE, State, transition
from editplatform.jobs.uploads import ValidatedImage

logger = logging.getLogger(__name__)

PURPOSE_MIN, PURPOSE_MAX = 10, 1000
IDEMPOTENCY_KEY_MAX = 255


class JobError(Exception):
    """A request the job rules refuse; ``status`` is the HTTP status to answer with."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code
        if status:
            self.status = status

    def as_dict(self) -> dict:
        data = {"detail": self.message, "code": self.code}
        if self.field:
            data["field"] = self.field
        return data


class IdempotencyConflict(JobError):
    status = 422
    code = "idempotency_key_reused"


class NotCancellable(JobError):
    status = 409
    code = "not_cancellable"


# --- input rules -------------------------------------------------------------------

def can_submit(user) -> bool:
    return has_role(user, REQUESTER) or has_role(user, INTEGRATION)


def parse_edits(raw, catalog) -> dict[str, float]:
    """``{name: strength}`` (a mapping or its JSON text) checked against the catalog.

    Zero strengths are dropped: a slider left at 0 is no edit, and the parameter hash
    an approval binds to should not depend on untouched sliders.
    """
    from inversion.errors import EditError, StrengthOutOfRange, UnknownEdit

    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise JobError(f"edits must be a JSON object of edit name to strength: {exc}", field="edits",
                           code="edits_not_json") from None
    if not isinstance(raw, Mapping):
        raise JobError("edits must be a JSON object of edit name to strength, e.g. {\"smile\": 1.5}",
                       field="edits", code="edits_not_object")
    try:
        checked = catalog.validate_request(raw)
    except UnknownEdit as exc:
        raise JobError(str(exc), field="edits", code="unknown_edit") from None
    except StrengthOutOfRange as exc:
        raise JobError(str(exc), field="edits", code="strength_out_of_range") from None
    except EditError as exc:
        raise JobError(str(exc), field="edits", code="invalid_edits") from None
    return {name: strength for name, strength in checked.items() if strength != 0.0}


def clean_purpose(purpose) -> str:
    text = (purpose or "").strip() if isinstance(purpose, str) else ""
    if len(text) < PURPOSE_MIN:
        raise JobError(f"purpose is required: say in at least {PURPOSE_MIN} characters why this edit is needed",
                       field="purpose", code="purpose_required")
    if len(text) > PURPOSE_MAX:
        raise JobError(f"purpose is too long ({len(text)} characters; at most {PURPOSE_MAX})",
                       field="purpose", code="purpose_too_long")
    return text


def require_consent(consent) -> None:
    if consent is not True:
        raise JobError("consent must be attested: confirm you have the consent of the person shown",
                       field="consent", code="consent_required")


def idempotency_fingerprint(upload_sha256: str, edits: Mapping[str, float], purpose: str) -> str:
    canonical = json.dumps([upload_sha256, dict(sorted(edits.items())), purpose], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def clean_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise JobError(f"Idempotency-Key must be printable and at most {IDEMPOTENCY_KEY_MAX} characters",
                       field="Idempotency-Key", code="bad_idempotency_key")
    return key


def find_replay(user, key: str | None, fingerprint: str) -> EditJob | None:
    """The job an earlier request with this Idempotency-Key created, if any."""
    if not key:
        return None
    job = EditJob.objects.filter(requester=user, idempotency_key=key).first()
    if job is not None and job.idempotency_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different request (other image, edits or purpose)",
            field="Idempotency-Key",
        )
    return job


# --- submit ------------------------------------------------------------------------

def submit(*, user, image: ValidatedImage, edits: Mapping[str, float], purpose: str, consent: bool,
           source: str, idempotency_key: str | None = None, api_key=None) -> tuple[EditJob, bool]:
    """Store the original and create the job with its audit events in one transaction.

    Returns (job, created); created is False when an Idempotency-Key replays an earlier
    request. The job is enqueued after commit (publishing never happens for a job that
    was rolled back); if the broker is down the job stays queued and the sweeper sends
    it later.
    """
    if not can_submit(user):
        raise PermissionDenied("only requesters and integrations may submit edit jobs")
    catalog_info = engine.get_catalog()
    purpose = clean_purpose(purpose)
    require_consent(consent)
    key = clean_idempotency_key(idempotency_key)
    fingerprint = idempotency_fingerprint(image.upload_sha256, edits, purpose)
    replay = find_replay(user, key, fingerprint)
    if replay is not None:
        return replay, False

    edits = dict(edits)
    needs_approval = policy.needs_approval(catalog_info.catalog, edits)
    digest = artifacts.write_blob(image.png)  # bytes first; removed again if the rows roll back
    try:
        with transaction.atomic():
            original, _ = Artifact.objects.get_or_create(
                sha256=digest,
                defaults={"media_type": "image/png", "size": len(image.png), "width": image.width, "height": image.height},
            )
            job = EditJob.objects.create(
                requester=user, source=source, request_id=current_request_id()[:64].strip("-"),
                original=original, upload_sha256=image.upload_sha256, upload_format=image.source_format,
                edits=edits, purpose=purpose, consent=True,
                params_sha256=policy.params_sha256(digest, edits, purpose), needs_approval=needs_approval,
                idempotency_key=key, idempotency_fingerprint=fingerprint if key else "",
                state=State.SUBMITTED, stage="submitted", api_key=api_key,
            )
            events.emit(events.JOB_SUBMITTED, actor=user, subject=events.job_subject(job), payload={
                "original_sha256": digest, "upload_sha256": image.upload_sha256, "edits": edits,
                "purpose": purpose, "consent": True, "params_sha256": job.params_sha256,
                "source": source, "api_key": api_key.prefix if api_key is not None else None,
                "model_version": catalog_info.version, "needs_approval": needs_approval,
                "sensitive_edits": policy.sensitive_edits(catalog_info.catalog, edits),
            })
            if needs_approval:
                transition(job, State.AWAITING_APPROVAL, stage="awaiting approval")
            else:
                _queue(job, actor=user)
    except IntegrityError:
        artifacts.discard_blob_if_unreferenced(digest)
        if key:  # a concurrent request with the same key won the race
            replay = find_replay(user, key, fingerprint)
            if replay is not None:
                return replay, False
        raise
    except BaseException:
        artifacts.discard_blob_if_unreferenced(digest)
        raise
    return job, True


def _queue(job: EditJob, *, actor=None) -> None:
    """Enter `queued` (inside the caller's transaction) and publish after commit."""
    transition(job, State.QUEUED, stage="queued")
    events.emit(events.JOB_QUEUED, actor=actor, subject=events.job_subject(job),
                payload={"original_sha256": job.original_id, "edits": job.edits, "params_sha256": job.params_sha256})
    job_id = job.pk
    transaction.on_commit(lambda: enqueue(job_id))


def enqueue(job_id) -> bool:
    """Publish the job's task to the `gpu` queue; on failure leave it for the sweeper."""
    from editplatform.jobs.tasks import run_edit_job

    try:
        run_edit_job.apply_async(args=[str(job_id)], queue="gpu", routing_key="gpu")
    except Exception as exc:  # broker down, DNS, full disk...: the job row keeps the intent
        logger.warning("job %s: publishing to the broker failed (%s); the sweeper will retry", job_id, exc)
        EditJob.objects.filter(pk=job_id, state=State.QUEUED).update(
            enqueue_error=f"{type(exc).__name__}: {exc}"[:1000], updated_at=timezone.now())
        return False
    EditJob.objects.filter(pk=job_id).update(enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1,
                                             enqueue_error="")
    return True


# --- cancel, approve, reject ----------------------------------------------------------

def cancel(job: EditJob, user) -> EditJob:
    """Cancel one's own job: at once if not running, else ask the worker to stop."""
    if job.requester_id != getattr(user, "pk", None):
        raise PermissionDenied("only the requester may cancel a job")
    for _ in range(3):  # the state may move under us (e.g. queued -> running)
        job.refresh_from_db()
        if job.state not in ACTIVE:
            raise NotCancellable(f"the job is already {job.state}")
        if job.state == State.RUNNING:
            EditJob.objects.filter(pk=job.pk, state=State.RUNNING).update(cancel_requested=True,
                                                                          updated_at=timezone.now())
            job.refresh_from_db()
            if job.state == State.RUNNING:
                return job
            continue
        with transaction.atomic():
            previous = job.state
            if transition(job, State.CANCELLED, sources=frozenset({State(previous)}), stage="cancelled",
                          cancel_requested=True):
                events.emit(events.JOB_CANCELLED, actor=user, subject=events.job_subject(job),
                            payload={"original_sha256": job.original_id, "edits": job.edits, "by": "requester",
                                     "while": previous})
                return job
    job.refresh_from_db()
    return job


def approve(job: EditJob, *, approver, params_sha256: str) -> EditJob:
    """Hook for the approvals app: release an approved job to the queue.

    The approval binds to ``params_sha256``; a mismatch (parameters changed since the
    approver looked) is refused. Four-eyes rules live in the approvals app.
    """
    if params_sha256 != job.params_sha256:
        raise JobError("the approval is for different job parameters", code="approval_mismatch", status=409)
    with transaction.atomic():
        if not transition(job, State.QUEUED, sources=frozenset({State.AWAITING_APPROVAL}),
                          approved_params_sha256=params_sha256, stage="queued"):
            raise JobError(f"the job is {job.state}, not awaiting approval", code="not_awaiting_approval", status=409)
        events.emit(events.JOB_QUEUED, actor=approver, subject=events.job_subject(job),
                    payload={"original_sha256": job.original_id, "edits": job.edits,
                             "params_sha256": job.params_sha256, "approved": True})
        job_id = job.pk
        transaction.on_commit(lambda: enqueue(job_id))
    return job


def reject(job: EditJob, *, approver, reason: str) -> EditJob:
    """Hook for the approvals app: the job will never run."""
    with transaction.atomic():
        if not transition(job, State.REJECTED, sources=frozenset({State.AWAITING_APPROVAL}),
                          error=reason[:2000], error_code="rejected", stage="rejected"):
            raise JobError(f"the job is {job.state}, not awaiting approval", code="not_awaiting_approval", status=409)
    return job
