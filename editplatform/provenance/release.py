"""Marking released outputs: the release hook provenance registers with jobs, and its sweep.

When a job's outputs are released (``job.succeeded`` for plain jobs, ``job.released`` for
held ones) the jobs layer calls :func:`mark_released` after commit. It marks the edited
output (:func:`services.mark_output`), stores the marked bytes as a content-addressed
artifact, links it as ``EditJob.marked`` (what downloads of "edited" serve from then on)
and records ``provenance.marked`` with the marked bytes' SHA-256. A photo-pipeline job's
full-resolution ``result`` (what a user of a real photo downloads) is marked the same way
and linked as ``EditJob.marked_result``, with its own ``provenance.marked`` event
(``kind: "result"``).

A failure never loses the job: it is logged, recorded as ``provenance.mark_failed`` and
left for :func:`sweep`, which the beat runs periodically over a bounded batch of
released jobs with an output that has no mark yet.
"""

from __future__ import annotations

import io
import logging
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q
from PIL import Image

from audit.log import append_event
from audit.models import AuditEvent
from editplatform.jobs import artifacts
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.provenance.audit_actions import PROVENANCE_MARK_FAILED, PROVENANCE_MARKED

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
    call linked at least one mark.

    Each output is marked, stored and linked on its own, so a failure on one leaves the
    other's mark standing and the sweep retries only what is missing. False (and nothing
    recorded) when the job is not released, has no such output, or is already marked.
    Raises what marking raises; :func:`mark_released` catches it.
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
    linked = False
    for source, target in todo:
        linked |= _mark_one(job, source, target, event)
    return linked


def _mark_one(job: EditJob, source: str, target: str, event: AuditEvent) -> bool:
    """Mark `job.<source>`, store the marked bytes and link them as `job.<target>`."""
    from editplatform.provenance.services import mark_output

    source_id = getattr(job, f"{source}_id")
    marked = mark_output(job, artifacts.read(getattr(job, source)), audit_event=event)
    width, height = Image.open(io.BytesIO(marked.data)).size
    media_type = "image/jpeg" if marked.data[:3] == b"\xff\xd8\xff" else "image/png"
    try:
        artifact = artifacts.store(marked.data, media_type, width=width, height=height)
    except DatabaseError:
        _discard_unlinked(artifacts.sha256_hex(marked.data))
        raise
    with transaction.atomic():
        linked = EditJob.objects.filter(
            pk=job.pk, **{f"{target}__isnull": True, f"{source}_id": source_id}
        ).update(**{target: artifact})
        if not linked:  # another worker marked it meanwhile: its mark stands
            return False
        append_event(
            PROVENANCE_MARKED,
            subject=f"job:{job.pk}",
            actor_name="provenance",
            subjects=[f"artifact:{source_id}", f"artifact:{artifact.sha256}"],
            payload={
                "job": str(job.pk),
                "kind": source,
                f"{source}_sha256": source_id,
                "marked_sha256": artifact.sha256,
                "watermark_key": f"{marked.watermark_key:08x}",
                "release_event_seq": event.seq,
                "manifest_job_id": marked.manifest_info["job_id"],
            },
        )
    return True


def _discard_unlinked(digest: str, *, attempts: int = 10, pause_s: float = 1.0) -> None:
    """Remove the key and ciphertext of marked bytes whose row could not be stored.

    A signed mark is unique to one call (its manifest carries a time), so a retry by the
    sweep writes other bytes and these would stay behind as an orphan blob. The database
    is usually what failed (e.g. a restart), so this retries for a few seconds on a fresh
    connection; if it stays unreachable the blob is left for ``check_artifacts`` to report.
    """
    if connection.in_atomic_block:  # a caller's transaction: no reconnecting under it
        attempts = 1
    for attempt in range(attempts):
        if not connection.in_atomic_block:
            close_old_connections()
        try:
            artifacts.discard_blob_if_unreferenced(digest)
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
