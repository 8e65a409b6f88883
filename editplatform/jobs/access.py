"""Reading jobs and their artifacts on behalf of a user (portal and API share it).

Object-level access is decided by ``EditJob.objects.visible_to(user)`` only; an id the
user may not see answers 404 exactly like an id that does not exist (no IDOR, no
existence oracle). Once released and marked (provenance), "edited" and the photo
pipeline's "result" are served as their marked copies: watermarked, with a signed C2PA
manifest. A job's *held* outputs
(computed, awaiting approval) answer 404 to
everyone but eligible approvers and reviewers (:func:`holding.may_read_outputs`): the
requester and the API see them only once released. Every artifact read is an audit
event whose subject is the job (so the job's timeline lists who saw what) and which
also names the artifact.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import transaction
from django.http import FileResponse, Http404

from editplatform.jobs import artifacts, events, holding
from editplatform.jobs.models import Artifact, EditJob

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",  # originals are stored as uploaded
    "image/webp": "webp",
    "application/json": "json",
    "application/vnd.styleledger.latent+safetensors": "safetensors",
}


def get_visible_job(user, job_id) -> EditJob:
    try:
        return (
            EditJob.objects.visible_to(user)
            .select_related(
                "original",
                "reconstruction",
                "edited",
                "marked",
                "latent",
                "result",
                "marked_result",
                "aligned",
                "transform",
                "requester",
            )
            .get(pk=job_id)
        )
    except (EditJob.DoesNotExist, ValueError, TypeError):
        raise Http404("no such job") from None


def readable_artifact(user, job: EditJob, kind: str):
    """The artifact of ``kind`` if ``user`` may read it now, else None (held outputs included)."""
    artifact = job.artifact(kind)
    # released and marked: what leaves is the marked copy
    if kind == Artifact.Kind.EDITED and job.marked_id:
        artifact = job.marked
    elif kind == Artifact.Kind.RESULT and job.marked_result_id:
        artifact = job.marked_result
    if artifact is None or (
        kind != Artifact.Kind.ORIGINAL and not holding.may_read_outputs(user, job)
    ):
        return None
    return artifact


def artifact_response(
    user, job: EditJob, kind: str, *, download: bool, purpose: str = ""
) -> FileResponse:
    """Stream one artifact of a visible job (logged), or 404 when it does not exist."""
    artifact = readable_artifact(user, job, kind)
    if artifact is None:
        raise Http404(f"the job has no {kind} artifact")
    # Erased (410) or failing its integrity check: refused before anything is logged or sent.
    stream = artifacts.open_stream(artifact)
    action = events.ARTIFACT_DOWNLOADED if download else events.ARTIFACT_VIEWED
    with _closing_on_error(stream), transaction.atomic():
        events.emit(
            action,
            actor=user,
            subject=events.job_subject(job),
            subjects=[events.artifact_subject(artifact.sha256)],
            payload={
                "job": str(job.pk),
                "kind": kind,
                "sha256": artifact.sha256,
                "purpose": purpose,
                "requester_is_reader": job.requester_id == user.pk,
            },
        )
    filename = f"{job.pk}-{kind}.{EXTENSIONS.get(artifact.media_type, 'bin')}"
    response = FileResponse(
        stream,
        content_type=artifact.media_type,
        as_attachment=download,
        filename=filename,
    )
    response["Content-Length"] = str(artifact.size)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["ETag"] = f'"{artifact.sha256}"'
    return response


@contextmanager
def _closing_on_error(stream):
    try:
        yield
    except BaseException:
        stream.close()
        raise


ARTIFACT_KINDS = tuple(Artifact.Kind.values)
