"""Which artifacts are due for shredding, and the periodic run that shreds them.

A job's artifacts are kept ``days`` (per artifact kind, optionally per purpose) after
the job *ended* (finished, or its last change for jobs that ended otherwise). An
artifact shared by several jobs (the same photo twice) is due only when it is due for
every job that names it. Legal holds are enforced by the guard in
:mod:`editplatform.retention.holds` inside :func:`editplatform.jobs.shredding.shred`;
the run counts what they block and moves on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.log import append_event
from editplatform.jobs import shredding
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import TERMINAL
from editplatform.provenance import check_keys
from editplatform.retention.audit_actions import RETENTION_RAN
from editplatform.retention.models import RetentionPolicy

logger = logging.getLogger(__name__)

BATCH = 500
# Job fields kept under another field's retention kind: the marked full-resolution result is
# a released (marked) copy like `marked`.
FIELD_KINDS = {"marked_result": "marked"}


def days_for(kind: str, purpose: str, rows: list[RetentionPolicy] | None = None) -> int | None:
    """Days to keep artifacts of ``kind`` for a job with ``purpose`` (None: keep)."""
    kind = FIELD_KINDS.get(kind, kind)
    rows = list(RetentionPolicy.objects.all()) if rows is None else rows
    matching = [
        r
        for r in rows
        if r.kind == kind
        and (not r.purpose_contains or r.purpose_contains.lower() in (purpose or "").lower())
    ]
    if matching:  # the most specific (a purpose condition) wins, then the shortest
        matching.sort(key=lambda r: (not r.purpose_contains, r.days))
        return matching[0].days
    value = settings.RETENTION_DAYS.get(kind)
    return None if value is None else int(value)


def job_end(job: EditJob) -> datetime:
    return job.finished_at or job.updated_at


def _due_for_job(job: EditJob, field: str, now: datetime, rows) -> bool:
    if job.state not in TERMINAL:
        return False
    days = days_for(field, job.purpose, rows)
    return days is not None and job_end(job) + timedelta(days=days) <= now


def due(now: datetime | None = None) -> list[tuple[str, str, int]]:
    """[(sha256, kind, days)] of live artifacts whose retention has run out."""
    now = now or timezone.now()
    rows = list(RetentionPolicy.objects.all())
    all_days = [r.days for r in rows] + [int(v) for v in settings.RETENTION_DAYS.values()]
    if not all_days:
        return []
    oldest_end = now - timedelta(days=min(all_days))
    erased = set(Artifact.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    live = Q()  # jobs that still name at least one live artifact
    for field in shredding.JOB_ARTIFACT_FIELDS:
        live |= Q(**{f"{field}__isnull": False, f"{field}__erased_at__isnull": True})
    jobs = (
        EditJob.objects.filter(state__in=list(TERMINAL))
        .filter(live)
        .annotate(ended=Coalesce("finished_at", "updated_at"))
        .filter(ended__lte=oldest_end)
        .order_by("ended")
    )
    found: dict[str, tuple[str, int]] = {}
    for job in jobs.iterator():
        for field, sha in shredding.artifacts_of(job).items():
            if sha in erased or sha in found or not _due_for_job(job, field, now, rows):
                continue
            others = [j for j in shredding.jobs_of(sha) if j.pk != job.pk]
            if all(
                _due_for_job(other, f, now, rows)
                for other in others
                for f, s in shredding.artifacts_of(other).items()
                if s == sha
            ):
                found[sha] = (field, days_for(field, job.purpose, rows))
        if len(found) >= BATCH:
            break
    return [(sha, kind, days) for sha, (kind, days) in found.items()]


def run(now: datetime | None = None) -> dict:
    """Shred every artifact that is due (each in its own transaction); log a summary."""
    shredded, blocked = [], []
    for sha, kind, days in due(now):
        try:
            if shredding.shred(
                sha,
                reason=f"retention: {kind} kept {days} days after the job ended",
                ref=f"retention:{kind}",
                actor_name="retention",
            ):
                shredded.append(sha)
        except shredding.ShredBlocked as exc:
            blocked.append(sha)
            logger.info("retention: %s", exc.message)
    checks = check_keys.shred_expired(now)  # "was this made here?" salts past their days
    if shredded or blocked or checks:
        with transaction.atomic():
            append_event(
                RETENTION_RAN,
                actor_name="retention",
                subject="retention",
                payload={"shredded": len(shredded), "blocked": len(blocked), "check_keys": checks},
            )
    return {"shredded": shredded, "blocked": blocked, "check_keys": checks}
