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

A run takes the due jobs BATCH at a time and keeps going while rounds come back full
(within one sweep period), so a backlog (every queued message lost with a broker that
restarted empty) is re-published in one run rather than BATCH per period: 5,000 lost
jobs took ten periods (five minutes at the default 30 s) before 2026-11-29.
"""

from __future__ import annotations

import logging
import time
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
    """Re-publish every due job; returns counts (for logs and tests).

    Rounds of BATCH until a round is not full, the broker refuses, or the run has lasted
    one sweep period (the next beat run carries on). A job just re-published is not due
    again (its ``enqueued_at`` is now), so each round takes new jobs.
    """
    sent = failed = 0
    done: set = set()
    deadline = time.monotonic() + settings.JOB_SWEEP_INTERVAL_SECONDS
    while True:
        due = due_job_ids(now)
        fresh = [job_id for job_id in due if job_id not in done]
        for job_id in fresh:
            if services.enqueue(job_id):
                sent += 1
                done.add(job_id)
            else:
                failed += 1
                break  # the broker is down: the next sweep tries again
        if failed or len(due) < BATCH or len(fresh) < len(due) or time.monotonic() > deadline:
            break
    if sent or failed:
        logger.info("sweeper: re-published %d job(s), %d failed", sent, failed)
    return {"sent": sent, "failed": failed}
