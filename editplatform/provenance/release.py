"""Marking released outputs: the release hook provenance registers with jobs, and its sweep.

When a job's outputs are released (``job.succeeded`` for plain jobs, ``job.released`` for
held ones) the jobs layer calls :func:`mark_released` after commit. It marks the edited
output (:func:`services.mark_output`), stores the marked bytes as a content-addressed
artifact, links it as ``EditJob.marked`` (what downloads of "edited" serve from then on)
and records ``provenance.marked`` with the marked bytes' SHA-256. A photo-pipeline job's
full-resolution ``result`` (what a user of a real photo downloads) is marked the same way
and linked as ``EditJob.marked_result``, in the same transaction and event.

A failure never loses the job: it is logged, recorded as ``provenance.mark_failed`` and
left for :func:`sweep`, which the beat runs periodically over a bounded batch of
released jobs with an output that has no mark yet.
"""

from __future__ import annotations

import io
import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import ProtectedError, Q
from PIL import Image

from audit.log import append_event
from audit.models import AuditEvent
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import State
from editplatform.provenance.audit_actions import PROVENANCE_MARK_FAILED, PROVENANCE_MARKED

if TYPE_CHECKING:  # services imports the signing stack; release loads at app start
    from editplatform.provenance.services import MarkContext, MarkedOutput

logger = logging.getLogger(__name__)

RELEASE_ACTIONS = ("job.succeeded", "job.released")
SWEEP_BATCH = 20


def release_event(job: EditJob) -> AuditEvent | None:
    """The committed event that released the job's outputs (the latest of the two kinds)."""
    return (
        AuditEvent.objects.filter(subject=f"job:{job.pk}", action__in=RELEASE_ACTIONS)
        .order_by("-seq")
        .first()
    )


MARKS = (("edited", "marked"), ("result", "marked_result"))
"""(output field, field linking its marked copy): the model-size edit and, for the photo
pipeline, the full-resolution pasted-back result — what a user of a real photo downloads."""


def mark_job(job: EditJob) -> bool:
    """Mark one released job's outputs (edited, and result when it has one); True when this
    call linked its marks.

    Every output still lacking a mark is marked and stored, then all are linked in one
    transaction with one ``provenance.marked`` event naming each source and marked hash
    (``edited_sha256``/``marked_sha256``/``watermark_key`` and
    ``result_sha256``/``marked_result_sha256``/``result_watermark_key``). A failure after
    marked bytes were written discards every copy this call stored, so a retry (the sweep)
    leaves nothing behind. False (and nothing recorded) when the job is not released, has
    no such output, or is already marked. Raises what marking raises;
    :func:`mark_released` catches it.
    """
    job = EditJob.objects.select_related("original", "edited", "result").get(pk=job.pk)
    todo = [
        (source, target)
        for source, target in MARKS
        if getattr(job, f"{source}_id") is not None and getattr(job, f"{target}_id") is None
    ]
    if job.state != State.SUCCEEDED or not todo:
        return False
    event = release_event(job)
    if event is None:
        raise RuntimeError(f"job {job.pk} has no job.succeeded or job.released event")
    from editplatform.provenance.services import mark_context

    stored: list[tuple[str, str, Artifact, MarkedOutput]] = []
    try:
        context = mark_context(job, event)
        for source, target in todo:
            marked = _mark_and_store(job, source, event, context)
            stored.append((source, target, *marked))
        if _link(job, event, stored):
            return True
    except DatabaseError:
        _discard_all(stored)
        raise
    _discard_all(stored)  # another worker marked it meanwhile: its marks stand
    return False


def _mark_and_store(job: EditJob, source: str, event: AuditEvent, context: MarkContext):
    """Mark `job.<source>` and store the marked bytes; (artifact, marked output)."""
    from editplatform.provenance.services import mark_output

    marked = mark_output(
        job, artifacts.read(getattr(job, source)), audit_event=event, context=context
    )
    width, height = Image.open(io.BytesIO(marked.data)).size
    media_type = "image/jpeg" if marked.data[:3] == b"\xff\xd8\xff" else "image/png"
    try:
        artifact = artifacts.store(marked.data, media_type, width=width, height=height)
    except DatabaseError:
        _discard_unlinked(artifacts.sha256_hex(marked.data))
        raise
    return artifact, marked


def _link(job: EditJob, event: AuditEvent, stored) -> bool:
    """Link every stored mark and record one ``provenance.marked``; False if raced."""
    unchanged = {f"{target}__isnull": True for _, target, _, _ in stored}
    unchanged.update({f"{source}_id": getattr(job, f"{source}_id") for source, *_ in stored})
    payload: dict = {
        "job": str(job.pk),
        "release_event_seq": event.seq,
        "manifest_job_id": stored[0][3].manifest_info["job_id"],
    }
    subjects = []
    for source, target, artifact, marked in stored:
        prefix = "" if source == "edited" else f"{source}_"
        payload[f"{source}_sha256"] = getattr(job, f"{source}_id")
        payload[f"{target}_sha256"] = artifact.sha256
        payload[f"{prefix}watermark_key"] = f"{marked.watermark_key:08x}"
        subjects += [f"artifact:{getattr(job, f'{source}_id')}", f"artifact:{artifact.sha256}"]
    with transaction.atomic():
        linked = EditJob.objects.filter(pk=job.pk, **unchanged).update(
            **{target: artifact for _, target, artifact, _ in stored}
        )
        if not linked:
            return False
        append_event(
            PROVENANCE_MARKED,
            subject=f"job:{job.pk}",
            actor_name="provenance",
            subjects=subjects,
            payload=payload,
        )
    return True


def _discard_all(stored) -> None:
    for *_, artifact, _ in stored:
        _discard_unlinked(artifact.sha256, drop_row=True)


def _discard_unlinked(
    digest: str, *, drop_row: bool = False, attempts: int = 10, pause_s: float = 1.0
) -> None:
    """Remove the key and ciphertext of marked bytes whose row could not be stored.

    A signed mark is unique to one call (its manifest carries a time), so a retry by the
    sweep writes other bytes and these would stay behind as an orphan blob. The database
    is usually what failed (e.g. a restart), so this retries for a few seconds on a fresh
    connection; if it stays unreachable the blob is left for ``check_artifacts`` to report.
    With `drop_row` the bytes' Artifact row (stored, never linked) goes first; a row some
    job links is kept (PROTECT), and so are its bytes.
    """
    if connection.in_atomic_block:  # a caller's transaction: no reconnecting under it
        attempts = 1
    for attempt in range(attempts):
        if not connection.in_atomic_block:
            close_old_connections()
        try:
            if drop_row:
                with transaction.atomic():
                    Artifact.objects.filter(sha256=digest).delete()
            artifacts.discard_blob_if_unreferenced(digest)
            return
        except ProtectedError:  # linked after all: it stays
            return
        except DatabaseError:
            if attempt + 1 < attempts:
                time.sleep(pause_s)
    logger.warning("could not discard the unlinked marked blob %s", digest)


def mark_released(job) -> None:
    """The release hook: mark `job` now; on failure log and record it, for the sweep to retry."""
    try:
        mark_job(job)
    except Exception as exc:  # noqa: BLE001 - the job stays released; the sweep retries
        logger.exception("could not mark the released output of job %s", job.pk)
        _record_failure(job, exc)


def _record_failure(job, exc: Exception) -> None:
    try:
        with transaction.atomic():
            append_event(
                PROVENANCE_MARK_FAILED,
                subject=f"job:{job.pk}",
                actor_name="provenance",
                payload={"job": str(job.pk), "error": f"{type(exc).__name__}: {exc}"[:500]},
            )
    except Exception:  # noqa: BLE001 - the log itself unreachable: the sweep still retries
        logger.exception("could not record the marking failure of job %s", job.pk)


def pending(limit: int = SWEEP_BATCH):
    """Released jobs with an output (edited or result) lacking its mark, oldest first, at
    most `limit`."""
    missing = Q()
    for source, target in MARKS:
        missing |= Q(**{f"{source}__isnull": False, f"{target}__isnull": True})
    return (
        EditJob.objects.filter(state=State.SUCCEEDED)
        .filter(missing)
        .order_by("finished_at")[:limit]
    )


def sweep(limit: int | None = None) -> int:
    """Mark up to `limit` released jobs that have no mark yet; return how many were marked."""
    done = 0
    for job in list(pending(limit or settings.PROVENANCE_SWEEP_BATCH)):
        try:
            done += mark_job(job)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the batch
            logger.exception("sweep: could not mark job %s", job.pk)
            _record_failure(job, exc)
    return done
