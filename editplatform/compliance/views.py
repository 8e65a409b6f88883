"""A job's audit timeline and its artifacts, for readers of the audit trail.

The timeline lists every event of a subject (any subject works; a job subject adds
the lineage original -> latent -> outputs with thumbnails). Serving an artifact
through these pages is itself an audit event (`artifact.viewed`), committed before
the bytes leave.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from audit.access import reader_required
from audit.log import append_event
from audit.models import AuditEvent
from editplatform.compliance.lineage import lineage
from editplatform.jobs import artifacts
from editplatform.jobs.audit_actions import ARTIFACT_VIEWED
from editplatform.jobs.models import EditJob

TIMELINE_LIMIT = 2000
THUMBNAIL_KINDS = ("original", "reconstruction", "edited")


SUBJECT_LIMIT = 200  # audit_event.subject's length


def _job(subject: str) -> EditJob | None:
    """The job an event subject names: `job:<uuid>` (what the jobs app writes) or a bare id."""
    try:
        job_id = uuid.UUID(subject.removeprefix("job:"))
    except ValueError:  # not a job id: a timeline without lineage
        return None
    related = EditJob.objects.select_related("original", "reconstruction", "edited", "latent")
    try:
        return related.filter(pk=job_id).first()
    except (ValueError, ValidationError):  # not this model's kind of id
        return None


def _subject_problem(subject: str | None) -> str:
    """Why `subject` cannot name anything in the log ('' when it can)."""
    if not subject:
        return "Which subject? Give ?subject=<subject>, e.g. job:<id>."
    if len(subject) > SUBJECT_LIMIT:
        return f"A subject has at most {SUBJECT_LIMIT} characters."
    if "\x00" in subject:
        return "A subject cannot contain NUL characters."
    return ""


def _bad_request(request, message: str):
    return render(request, "audit/bad_request.html", {"message": message, "problems": []}, status=400)


def _image_kinds(job: EditJob) -> dict[str, str]:
    """sha256 -> kind for the job's image artifacts that can be shown as thumbnails."""
    out = {}
    for kind in THUMBNAIL_KINDS:
        artifact = getattr(job, kind, None)
        if artifact is not None and str(getattr(artifact, "media_type", "")).startswith("image/"):
            out[artifact.sha256] = kind
    return out


@require_GET
@reader_required
def job_timeline(request, subject: str | None = None):
    """The timeline of `subject` (from the query string, or the older path form)."""
    if subject is None:
        subject = request.GET.get("subject")
    if problem := _subject_problem(subject):
        return _bad_request(request, problem)
    events = list(AuditEvent.objects.filter(subject=subject).order_by("seq")[:TIMELINE_LIMIT])
    job = _job(subject)
    chain = lineage(events)
    thumbs = _image_kinds(job) if job is not None else {}
    for node in [chain["original"], chain["latent"], *chain["outputs"].values()]:
        if node and node["sha256"] in thumbs:
            # Built from the job's own id and a stored artifact's hash, never the subject as given.
            node["thumbnail"] = reverse("compliance:artifact", args=[f"job:{job.pk}", node["sha256"]])
    return render(request, "compliance/job_timeline.html", {
        "subject": subject, "events": events, "job": job, "chain": chain,
        "outputs": sorted(chain["outputs"].items()),
    })


@require_GET
@reader_required
def artifact_view(request, subject: str, sha256: str):
    """Serve a job's image artifact; every view is an `artifact.viewed` event."""
    job = _job(subject) if not _subject_problem(subject) else None
    if job is None:
        raise Http404("no such job")
    kinds = _image_kinds(job)
    if sha256 not in kinds:
        raise Http404("no such artifact for this job")
    artifact = getattr(job, kinds[sha256])
    with transaction.atomic():
        append_event(ARTIFACT_VIEWED, actor=request.user, subject=subject, payload={
            "sha256": sha256, "kind": kinds[sha256], "via": "audit-trail"})
    response = HttpResponse(artifacts.read(artifact), content_type=artifact.media_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
