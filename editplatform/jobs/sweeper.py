"""The sweeper: no committed job is ever lost, whatever the broker or a worker did.

Run periodically (Celery beat entry ``jobs-sweep``, registered by the app; `make run`
starts the worker with ``--beat``). It re-publishes:

* queued jobs whose publish failed (broker down at submit), or that were never
  published (the web process died between commit and publish; after a grace period);
* queued jobs published long ago (JOB_REQUEUE_AFTER_SECONDS) that no worker claimed:
  the message may have been lost with a broker that restarted without persistence;
* running jobs whose worker stopped heart-beating for JOB_LEASE_SECONDS (killed, host
  lost): the redelivered task takes the job over under a new lease.

Duplicates this may create are harmless: the task is idempotent (see execution.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from editplatform.jobs import services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State

logger = logging.getLogger(__name__)

PUBLISH_GRACE_SECONDS = 10
BATCH = 500


def due_job_ids(now=None) -> list:
    now = now or timezone.now()
    grace = now - timedelta(seconds=PUBLISH_GRACE_SECONDS)
    stale_publish = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    lease_cutoff = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    queued = Q(state=State.QUEUED) & (
        Q(enqueued_at__isnull=True, enqueue_error__gt="")
        | Q(enqueued_at__isnull=True, queued_at__lt=grace)
        | Q(enqueued_at__lt=stale_publish)
    )
    orphaned = Q(state=State.RUNNING, heartbeat_at__lt=lease_cutoff) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=lease_cutoff)
    )
    return list(
        EditJob.objects.filter(queued | orphaned)
        .order_by("queued_at")
        .values_list("pk", flat=True)[:BATCH]
    )


def sweep(now=None) -> dict:
    """Re-publish every due job; returns counts (for logs and tests)."""
    sent = failed = 0
    for job_id in due_job_ids(now):
        if services.enqueue(job_id):
            sent += 1
        else:
            failed += 1
            break  # the broker is down: the next sweep tries again
    if sent or failed:
        logger.info("sweeper: re-published %d job(s), %d failed", sent, failed)
    return {"sent": sent, "failed": failed}
