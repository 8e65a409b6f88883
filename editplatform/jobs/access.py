"""Reading jobs and their artifacts on behalf of a user (portal and API share it).

Object-level access is decided by ``EditJob.objects.visible_to(user)`` only; an id the
user may not see answers 404 exactly like an id that does not exist (no IDOR, no
existence oracle). Every artifact read is an audit event.
"""

from __future__ import annotations

from django.db import transaction
from django.http import FileResponse, Http404

from editplatform.jobs import artifacts, events
from editplatform.jobs.models import Artifact, EditJob

EXTENSIONS = {"image/png": "png", "application/json": "json", "application/vnd.styleledger.latent+safetensors": "safetensors"}


def get_visible_job(user, job_id) -> EditJob:
    try:
        return EditJob.objects.visible_to(user).select_related("original", "reconstruction", "edited", "latent", "result",
                                                               "aligned", "transform",
                                                               "requester").get(pk=job_id)
    except (EditJob.DoesNotExist, ValueError, TypeError):
        raise Http404("no such job") from None


def artifact_response(user, job: EditJob, kind: str, *, download: bool, purpose: str = "") -> FileResponse:
    """Stream one artifact of a visible job (logged), or 404 when it does not exist."""
    artifact = job.artifact(kind)
    if artifact is None:
        raise Http404(f"the job has no {kind} artifact")
    action = events.ARTIFACT_DOWNLOADED if download else events.ARTIFACT_VIEWED
    with transaction.atomic():
        events.emit(action, actor=user, subject=f"artifact:{artifact.sha256}", payload={
            "job": str(job.pk), "kind": kind, "sha256": artifact.sha256, "purpose": purpose,
            "requester_is_reader": job.requester_id == user.pk,
        })
    filename = f"{job.pk}-{kind}.{EXTENSIONS.get(artifact.media_type, 'bin')}"
    response = FileResponse(artifacts.open_stream(artifact), content_type=artifact.media_type,
                            as_attachment=download, filename=filename)
    response["Content-Length"] = str(artifact.size)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["ETag"] = f'"{artifact.sha256}"'
    return response


ARTIFACT_KINDS = tuple(Artifact.Kind.values)
