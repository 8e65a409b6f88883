"""Business rules of edit jobs on the web side: submit, enqueue, cancel, and the
outcome of an approval decision (release or destroy the held outputs).

:func:`submit` is the one validator of a new job: the portal and the API hand it the
request as they received it (the uploaded file, the edits as a mapping or JSON text,
purpose, consent) and get the job back or a :class:`DomainError` naming the problem,
which they render with the project's one handler. Every state change goes through
:mod:`editplatform.jobs.states` and writes its audit event in the same transaction.
Publishing sends the worker's task by name, so this module never imports the worker.
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
from editplatform.celery import app as celery_app
from editplatform.core.errors import DomainError
from editplatform.core.middleware import current_request_id
from editplatform.jobs import (
    artifacts,
    engine,
    events,
    holding,
    keyed_ids,
    model_source,
    policy,
    release_hook,
    uploads,
)
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import ACTIVE, State, transition
from editplatform.jobs.worker_hooks import RUN_EDIT_JOB
from inversion.errors import EditError, StrengthOutOfRange, UnknownEdit

logger = logging.getLogger(__name__)

PURPOSE_MIN, PURPOSE_MAX = 10, 1000
IDEMPOTENCY_KEY_MAX = 255
CONSENT_WORDS = frozenset({"true", "1", "yes", "on"})


# --- input rules -------------------------------------------------------------------


def can_submit(user) -> bool:
    return has_role(user, REQUESTER) or has_role(user, INTEGRATION)


def parse_edits(raw, catalog) -> dict[str, float]:
    """``{name: strength}`` (a mapping or its JSON text) checked against the catalog.

    Zero strengths are dropped: a slider left at 0 is no edit, and the parameter hash
    an approval binds to should not depend on untouched sliders.
    """
    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        # ValueError: also integers over 4300 digits; RecursionError: nesting deeper than the stack
        except (ValueError, RecursionError) as exc:
            raise DomainError(
                f"edits must be a JSON object of edit name to strength: {exc}",
                "edits_not_json",
                field="edits",
            ) from None
    if not isinstance(raw, Mapping):
        raise DomainError(
            "edits must be a JSON object of edit name to strength (names: GET /api/v1/edits)",
            "edits_not_object",
            field="edits",
        )
    try:
        checked = catalog.validate_request(raw)
    except UnknownEdit as exc:
        raise DomainError(str(exc), "unknown_edit", field="edits") from None
    except StrengthOutOfRange as exc:
        raise DomainError(str(exc), "strength_out_of_range", field="edits") from None
    except EditError as exc:
        raise DomainError(str(exc), "invalid_edits", field="edits") from None
    except (
        OverflowError,
        RecursionError,
    ):  # a number beyond float range; a value too deep to describe
        raise DomainError(
            "edits: each strength must be a number within the edit's range",
            "invalid_edits",
            field="edits",
        ) from None
    return {name: strength for name, strength in checked.items() if strength != 0.0}


def clean_purpose(purpose) -> str:
    text = (purpose or "").strip() if isinstance(purpose, str) else ""
    if len(text) < PURPOSE_MIN:
        raise DomainError(
            f"purpose is required: say in at least {PURPOSE_MIN} characters"
            " why this edit is needed",
            "purpose_required",
            field="purpose",
        )
    if len(text) > PURPOSE_MAX:
        raise DomainError(
            f"purpose is too long ({len(text)} characters; at most {PURPOSE_MAX})",
            "purpose_too_long",
            field="purpose",
        )
    return text


def require_consent(consent) -> None:
    """Consent is attested by True, or by a form's "true" / "1" / "yes" / "on"."""
    if consent is True or (isinstance(consent, str) and consent.strip().lower() in CONSENT_WORDS):
        return
    raise DomainError(
        "consent must be attested: confirm you have the consent of the person shown",
        "consent_required",
        field="consent",
    )


def idempotency_fingerprint(
    upload_sha256: str,
    edits: Mapping[str, float],
    purpose: str,
    *,
    face_index: int | None = None,
    quality: str = "fast",
) -> str:
    """What an Idempotency-Key replay must match (a different request under the same key
    is refused); the face and quality only when not the defaults (as in params_sha256)."""
    parts: list = [upload_sha256, dict(sorted(edits.items())), purpose]
    if face_index is not None or quality != "fast":
        parts += [face_index, quality]
    canonical = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def clean_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise DomainError(
            f"Idempotency-Key must be printable and at most {IDEMPOTENCY_KEY_MAX} characters",
            "bad_idempotency_key",
            field="Idempotency-Key",
        )
    return key


def find_replay(user, key: str | None, fingerprint: str) -> EditJob | None:
    """The job an earlier request with this Idempotency-Key created, if any."""
    if not key:
        return None
    job = EditJob.objects.filter(requester=user, idempotency_key=key).first()
    if job is not None and job.idempotency_fingerprint != fingerprint:
        raise DomainError(
            "this Idempotency-Key was already used for a different request"
            " (other image, edits or purpose)",
            "idempotency_key_reused",
            status=422,
            field="Idempotency-Key",
        )
    return job


# --- submit ------------------------------------------------------------------------


def clean_face_index(raw) -> int | None:
    """The optional face index of a request (which detected face to edit, left to right)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise DomainError(
            "face_index must be a whole number (0 = the leftmost face)",
            "invalid_face_index",
            field="face_index",
        ) from None
    if not 0 <= value <= 99:
        raise DomainError(
            "face_index must be between 0 and 99", "invalid_face_index", field="face_index"
        )
    return value


QUALITY_MODES = ("fast", "refine")


def clean_quality(raw) -> str:
    """The optional quality mode of a request: ``fast`` (default) or ``refine``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "fast"
    value = str(raw).strip().lower() if isinstance(raw, str) else raw
    if value not in QUALITY_MODES:
        raise DomainError(
            f"quality must be one of {', '.join(QUALITY_MODES)}, got {str(raw)[:40]!r}",
            "invalid_quality",
            field="quality",
        )
    return value


def submit(
    *,
    user,
    image,
    edits,
    purpose,
    consent,
    source: str,
    idempotency_key: str | None = None,
    api_key=None,
    resubmitted_from: EditJob | None = None,
    face_index=None,
    quality=None,
) -> tuple[EditJob, bool]:
    """Validate a request for a new job, then store the original and create the job.

    ``image`` is the uploaded file (or its bytes), or an image that
    :func:`uploads.validate_image` already accepted; ``edits`` a mapping or its JSON
    text. Checks run cheapest first and a replayed Idempotency-Key answers before the
    image is decoded. Returns (job, created); created is False when an
    Idempotency-Key replays an earlier request. ``resubmitted_from`` links the new job
    to the requester's own rejected or expired job it revises.
    """
    if not can_submit(user):
        raise DomainError(
            "only requesters and integrations may submit edit jobs", "forbidden", status=403
        )
    if resubmitted_from is not None:
        check_resubmittable(resubmitted_from, user)
    if isinstance(image, uploads.ValidatedImage):
        data, upload_sha256 = None, image.upload_sha256
    else:
        data = image if isinstance(image, bytes) else uploads.read_upload(image)
        upload_sha256 = hashlib.sha256(data).hexdigest()
    raw_edits = edits
    for attempt in range(2):
        # The active version as this process last saw it; _create confirms it in the
        # job's transaction, and a stale answer sends us round once more, afresh.
        catalog_info, pin = engine.get_active_catalog()
        edits = parse_edits(raw_edits, catalog_info.catalog)
        purpose = clean_purpose(purpose)
        require_consent(consent)
        face_index = clean_face_index(face_index)
        quality = clean_quality(quality)
        key = clean_idempotency_key(idempotency_key)
        fingerprint = idempotency_fingerprint(
            upload_sha256, edits, purpose, face_index=face_index, quality=quality
        )
        replay = find_replay(user, key, fingerprint)
        if replay is not None:
            return replay, False
        if data is not None:
            image, data = uploads.validate_image(data, upload_sha256=upload_sha256), None
        try:
            return _create(
                user=user,
                image=image,
                edits=edits,
                purpose=purpose,
                source=source,
                key=key,
                fingerprint=fingerprint,
                api_key=api_key,
                catalog_info=catalog_info,
                pin=pin,
                resubmitted_from=resubmitted_from,
                face_index=face_index,
                quality=quality,
            )
        except _StalePin:
            model_source.forget_active()
            if attempt:
                break
    raise engine.ModelUnavailable("the active model version changed twice during the request")


class _StalePin(Exception):
    """The active version this process cached was replaced: nothing was committed."""


RESUBMITTABLE = frozenset({State.REJECTED, State.EXPIRED})


def check_resubmittable(job: EditJob, user) -> None:
    if job.requester_id != getattr(user, "pk", None):
        raise DomainError("only the requester may resubmit a job", "forbidden", status=403)
    if job.state not in RESUBMITTABLE:
        raise DomainError(
            f"only a rejected or expired job can be resubmitted; this one is {job.state}",
            "not_resubmittable",
            status=409,
        )


def _create(
    *,
    user,
    image: uploads.ValidatedImage,
    edits: dict[str, float],
    purpose: str,
    source: str,
    key: str | None,
    fingerprint: str,
    api_key,
    catalog_info,
    pin: model_source.ModelRef,
    resubmitted_from: EditJob | None = None,
    face_index: int | None = None,
    quality: str = "fast",
) -> tuple[EditJob, bool]:
    """Store the original and create the job with its audit events in one transaction.

    Every job is queued, including those that need approval: they are computed first
    and their outputs held for the approver (compute, then release). The job is
    enqueued after commit (publishing never happens for a job that was rolled back);
    if the broker is down the job stays queued and the sweeper sends it later.
    """
    needs_approval = policy.needs_approval(catalog_info.catalog, edits)
    # The upload's own bytes, as sent: normalising them is the worker's job
    # (editplatform.jobs.normalise), so nothing is decoded in full or re-encoded here.
    # bytes first; removed again if the rows roll back
    digest, data_key = artifacts.write_blob_keyed(image.data)
    try:
        # both events name the original: its key row is known, the rest looked up once
        with transaction.atomic(), keyed_ids.shared_lookups([data_key] if data_key else []):
            original = _original_row(digest, image)
            if not model_source.confirm_active(pin):  # after a write: see its doc
                raise _StalePin
            job = EditJob.objects.create(
                requester=user,
                source=source,
                request_id=current_request_id()[:64].strip("-"),
                original=original,
                upload_sha256=image.upload_sha256,
                upload_format=image.source_format,
                edits=edits,
                purpose=purpose,
                consent=True,
                params_sha256=policy.params_sha256(
                    digest, edits, purpose, face_index=face_index, quality=quality
                ),
                quality=quality,
                needs_approval=needs_approval,
                idempotency_key=key,
                idempotency_fingerprint=fingerprint if key else "",
                # Written queued at once: nobody sees the row before this transaction
                # commits, so SUBMITTED -> QUEUED (both events below, in that order)
                # needs no UPDATE of its own.
                state=State.QUEUED,
                stage="queued",
                queued_at=timezone.now(),
                api_key=api_key,
                resubmitted_from=resubmitted_from,
                face_index=face_index,
                model_pin=catalog_info.version,
            )
            previous = (
                {"resubmitted_from": str(resubmitted_from.pk)}
                if resubmitted_from is not None
                else {}
            )
            events.emit(
                events.JOB_SUBMITTED,
                actor=user,
                subject=events.job_subject(job),
                subjects=[events.job_subject(resubmitted_from)]
                if resubmitted_from is not None
                else [],
                payload={
                    **previous,
                    "original_sha256": digest,
                    "upload_sha256": image.upload_sha256,
                    "edits": edits,
                    "purpose": purpose,
                    "consent": True,
                    "params_sha256": job.params_sha256,
                    "source": source,
                    "api_key": api_key.prefix if api_key is not None else None,
                    "model_version": catalog_info.version,
                    "needs_approval": needs_approval,
                    "sensitive_edits": policy.sensitive_edits(catalog_info.catalog, edits),
                    "face_index": face_index,
                    "quality": quality,
                },
            )
            _queued(job, actor=user)
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


def _original_row(digest: str, image: uploads.ValidatedImage) -> Artifact:
    """The original's Artifact row, created or revived in one statement.

    ``INSERT ... ON CONFLICT (sha256) DO UPDATE`` clearing the erased mark: a new photo
    gets its row, the same photo uploaded again keeps its row, and one erased before
    (its bytes were just stored again under a new key) is live again, as
    :func:`artifacts.revive` would make it; one round trip instead of get-or-create's
    four (select, savepoint, insert, release).
    """
    row = Artifact(
        sha256=digest,
        media_type=image.media_type,
        size=len(image.data),
        width=image.width,
        height=image.height,
    )
    Artifact.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["sha256"],
        update_fields=["erased_at", "erasure_reason", "erasure_ref"],
    )
    return row


def _queued(job: EditJob, *, actor) -> None:
    """Record that a new job entered `queued` and publish it after commit."""
    payload = {
        "original_sha256": job.original_id,
        "edits": job.edits,
        "params_sha256": job.params_sha256,
        "hold_for_approval": job.needs_approval,
    }
    events.emit(events.JOB_QUEUED, actor=actor, subject=events.job_subject(job), payload=payload)
    job_id = job.pk
    transaction.on_commit(lambda: enqueue(job_id))


def enqueue(job_id) -> bool:
    """Publish the job's task to the `gpu` queue; on failure leave it for the sweeper.

    ``ignore_result``: the task's own option is unknown to a send by name, and without it
    Celery first subscribes to the result backend; with Redis down that retries for ~20 s
    before failing, past the sweeper's grace, so the sweeper could publish the job first
    and the failure was never recorded. Fire-and-forget fails within the publish retries.
    """
    try:
        celery_app.send_task(
            RUN_EDIT_JOB, args=[str(job_id)], queue="gpu", routing_key="gpu", ignore_result=True
        )
    except Exception as exc:  # broker down, DNS, full disk...: the job row keeps the intent
        logger.warning(
            "job %s: publishing to the broker failed (%s); the sweeper will retry", job_id, exc
        )
        EditJob.objects.filter(pk=job_id, state=State.QUEUED).update(
            enqueue_error=f"{type(exc).__name__}: {exc}"[:1000], updated_at=timezone.now()
        )
        return False
    EditJob.objects.filter(pk=job_id).update(
        enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1, enqueue_error=""
    )
    return True


# --- cancel, and the outcome of an approval decision -----------------------------------


def cancel(job: EditJob, user) -> EditJob:
    """Cancel one's own job: at once if not running, else ask the worker to stop."""
    if job.requester_id != getattr(user, "pk", None):
        raise PermissionDenied("only the requester may cancel a job")
    for _ in range(3):  # the state may move under us (e.g. queued -> running)
        job.refresh_from_db()
        if job.state not in ACTIVE:
            raise DomainError(f"the job is already {job.state}", "not_cancellable", status=409)
        if job.state == State.RUNNING:
            EditJob.objects.filter(pk=job.pk, state=State.RUNNING).update(
                cancel_requested=True, updated_at=timezone.now()
            )
            job.refresh_from_db()
            if job.state == State.RUNNING:
                return job
            continue
        with transaction.atomic():
            previous = job.state
            if transition(
                job,
                State.CANCELLED,
                sources=frozenset({State(previous)}),
                stage="cancelled",
                cancel_requested=True,
            ):
                events.emit(
                    events.JOB_CANCELLED,
                    actor=user,
                    subject=events.job_subject(job),
                    payload={
                        "original_sha256": job.original_id,
                        "edits": job.edits,
                        "by": "requester",
                        "while": previous,
                    },
                )
                if previous == State.AWAITING_APPROVAL:
                    holding.destroy_outputs(job, reason="cancelled", actor=user)
                return job
    job.refresh_from_db()
    return job


def _not_awaiting(job: EditJob) -> DomainError:
    return DomainError(
        f"the job is {job.state}, not held for approval", "not_awaiting_approval", status=409
    )


def release_approved(job: EditJob, *, approver, params_sha256: str, outputs_sha256: str) -> EditJob:
    """Release a held job's outputs to its requester once its approvals are complete.

    Called by the approvals app inside its decision transaction. The release binds to
    the parameters *and* the held outputs the approvers saw: both hashes are recomputed
    from the row now, and the approval hook re-checks the four-eyes rules for them
    (:func:`policy.may_release`). A mismatch is refused and nothing is released.
    """
    if params_sha256 != policy.job_params_sha256(job) or params_sha256 != job.params_sha256:
        raise DomainError(
            "the approval is for different job parameters", "approval_mismatch", status=409
        )
    if outputs_sha256 != policy.outputs_sha256(job):
        raise DomainError(
            "the approval is for different outputs than the ones held",
            "approval_mismatch",
            status=409,
        )
    if not policy.may_release(job):
        raise DomainError(
            "the job's approvals do not cover these parameters and outputs",
            "approval_mismatch",
            status=409,
        )
    with transaction.atomic():
        if not transition(
            job,
            State.SUCCEEDED,
            sources=frozenset({State.AWAITING_APPROVAL}),
            stage="done",
            approved_params_sha256=params_sha256,
            where={
                "reconstruction_id": job.reconstruction_id,
                "edited_id": job.edited_id,
                "latent_id": job.latent_id,
            },
        ):
            raise _not_awaiting(job)
        hashes = policy.output_hashes(job)
        events.emit(
            events.JOB_RELEASED,
            actor=approver,
            subject=events.job_subject(job),
            subjects=events.artifact_subjects(hashes.values()),
            payload={
                "params_sha256": params_sha256,
                "outputs_sha256": outputs_sha256,
                "held_outputs": hashes,
                "original_sha256": job.original_id,
                "edits": job.edits,
            },
        )
        release_hook.after_release(job)
    return job


def close_rejected(job: EditJob, *, reason: str, approver=None) -> EditJob:
    """End a held job an approver rejected: its outputs are destroyed, never released."""
    with transaction.atomic():
        if not transition(
            job,
            State.REJECTED,
            sources=frozenset({State.AWAITING_APPROVAL}),
            error=reason[:2000],
            error_code="rejected",
            stage="rejected",
        ):
            raise _not_awaiting(job)
        holding.destroy_outputs(job, reason="rejected", actor=approver)
    return job
