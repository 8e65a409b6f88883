"""A job's audit timeline and its artifacts, for readers of the audit trail.

The timeline lists every event naming a subject, as main or extra subject (any subject
works, and a bare job UUID or SHA-256 finds its prefixed subject; a job subject adds
the lineage original -> latent -> outputs with thumbnails, and the list of everyone
who viewed or downloaded the job's artifacts). Each row carries a one-line summary.

Opening the timeline is one audit event (`compliance.timeline_viewed`) naming the
thumbnails it shows; the thumbnails themselves (downscaled, so they are no way around
the log to the full image) are not logged one by one. The full-resolution image is
served with `?full=1` and logged as `artifact.viewed` under the job's subject.
"""

from __future__ import annotations

import io
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from PIL import Image, ImageOps

from audit.access import reader_required
from audit.log import append_event
from audit.queries import filter_events
from editplatform.compliance.audit_actions import TIMELINE_VIEWED
from editplatform.compliance.lineage import lineage
from editplatform.jobs import artifacts, keyed_ids
from editplatform.jobs.audit_actions import ARTIFACT_DOWNLOADED, ARTIFACT_VIEWED
from editplatform.jobs.models import EditJob

TIMELINE_LIMIT = 2000
THUMBNAIL_KINDS = ("original", "reconstruction", "edited")
THUMBNAIL_PIXELS = 192
ACCESS_ACTIONS = (ARTIFACT_VIEWED, ARTIFACT_DOWNLOADED)


SUBJECT_LIMIT = 200  # audit_event.subject's length


def _job(subject: str) -> EditJob | None:
    """The job an event subject names: `job:<uuid>` (what the jobs app writes) or a bare id."""
    try:
        job_id = uuid.UUID(subject.removeprefix("job:"))
    except ValueError:  # not a job id: a timeline without lineage
        return None
    related = EditJob.objects.select_related(
        "original", "reconstruction", "edited", "latent", "requester"
    )
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
    return render(
        request, "audit/bad_request.html", {"message": message, "problems": []}, status=400
    )


def _image_kinds(job: EditJob) -> dict[str, str]:
    """sha256 -> kind for the job's image artifacts that can be shown as thumbnails."""
    out = {}
    for kind in THUMBNAIL_KINDS:
        artifact = getattr(job, kind, None)
        if (
            artifact is not None
            and artifact.erased_at is None  # crypto-shredded: the page says so instead
            and str(getattr(artifact, "media_type", "")).startswith("image/")
        ):
            out[artifact.sha256] = kind
    return out


def _erased(job: EditJob) -> dict[str, str]:
    """sha256 -> "erased on <date> under <reason>" for the job's crypto-shredded artifacts."""
    out = {}
    kinds = ("original", "reconstruction", "edited", "latent", "result", "aligned", "transform")
    for kind in kinds:
        artifact = getattr(job, kind, None)
        if artifact is not None and artifact.erased_at is not None:
            out[artifact.sha256] = artifact.erased_under()
    return out


@require_GET
@reader_required
def job_timeline(request, subject: str | None = None):
    """The timeline of `subject` (from the query string, or the older path form)."""
    if subject is None:
        subject = request.GET.get("subject")
    if problem := _subject_problem(subject):
        return _bad_request(request, problem)
    job = _job(subject)
    canonical = f"job:{job.pk}" if job is not None else subject
    events = list(filter_events(subject=canonical).order_by("seq")[:TIMELINE_LIMIT])
    chain = lineage(events)
    if job is not None:  # new events record keyed commitments (editplatform.jobs.keyed_ids)
        ids = keyed_ids.recorded_ids(job)
        for node in [chain["original"], chain["latent"], *chain["outputs"].values()]:
            if node:
                recorded = node["sha256"]
                node["recorded"], node["sha256"] = recorded, ids.get(recorded, recorded)
    thumbs = _image_kinds(job) if job is not None else {}
    shown = {}
    erased = _erased(job) if job is not None else {}
    for node in [chain["original"], chain["latent"], *chain["outputs"].values()]:
        if node and node["sha256"] in erased:
            node["erased"] = erased[node["sha256"]]
        if node and node["sha256"] in thumbs:
            # Built from the job's own id and a stored artifact's hash, never the subject as given.
            node["thumbnail"] = reverse(
                "compliance:artifact", args=[f"job:{job.pk}", node["sha256"]]
            )
            shown[thumbs[node["sha256"]]] = node["sha256"]
    with transaction.atomic():
        append_event(
            TIMELINE_VIEWED,
            actor=request.user,
            subject=canonical,
            subjects=[f"artifact:{sha}" for sha in shown.values()],
            payload={"thumbnails": shown, "events_listed": len(events)},
        )
    return render(
        request,
        "compliance/job_timeline.html",
        {
            "subject": canonical,
            "events": events,
            "job": job,
            "chain": chain,
            "outputs": sorted(chain["outputs"].items()),
            "access": [event for event in events if event.action in ACCESS_ACTIONS],
        },
    )


def _thumbnail(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image) or image  # originals keep their EXIF orientation
    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue()


@require_GET
@reader_required
def artifact_view(request, subject: str, sha256: str):
    """A thumbnail of a job's image artifact (logged with the timeline view), or the full
    image with ``?full=1`` (an `artifact.viewed` event under the job's subject)."""
    job = _job(subject) if not _subject_problem(subject) else None
    if job is None:
        raise Http404("no such job")
    kinds = _image_kinds(job)
    if sha256 not in kinds:
        raise Http404("no such artifact for this job")
    artifact = getattr(job, kinds[sha256])
    if request.GET.get("full") == "1":
        with transaction.atomic():
            append_event(
                ARTIFACT_VIEWED,
                actor=request.user,
                subject=f"job:{job.pk}",
                subjects=[f"artifact:{sha256}"],
                payload={
                    "job": str(job.pk),
                    "sha256": sha256,
                    "kind": kinds[sha256],
                    "via": "audit-trail",
                },
            )
        body, media_type = artifacts.read(artifact), artifact.media_type
    else:
        body, media_type = _thumbnail(artifacts.read(artifact)), "image/png"
    response = HttpResponse(body, content_type=media_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
