"""Issue 16 gap: a job re-claimed after its worker died, pinned to a version the registry
no longer serves, fails with ``model_unknown`` naming the version (one job.failed event)
instead of being skipped and staying ``running``; on a live worker, whichever path
delivers it — the broker re-delivering the message or the sweeper re-publishing it."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.sweeper import sweep
from editplatform.jobs.uploads import validate_image
from editplatform.models_registry import services
from tests import catalog
from tests.approvals.test_four_eyes import png
from tests.jobs.conftest import audit_count, wait_for_state


def submit_held_by_dead_worker(user, seed: int, pin: str, *, heartbeat_at) -> EditJob:
    """Submit pinned to ``pin`` and, before it is published, mark it running on a worker
    that then died (its lease last renewed at ``heartbeat_at``)."""
    with transaction.atomic():
        job, _ = job_services.submit(
            user=user,
            image=validate_image(png(seed)),
            edits=catalog.request(),
            purpose="pinned model takeover test",
            consent=True,
            source="portal",
        )
        EditJob.objects.filter(pk=job.pk).update(
            model_pin=pin,
            state=State.RUNNING,
            stage="running",
            worker="celery@dead-host",
            lease_id=uuid.uuid4(),
            attempts=1,
            started_at=timezone.now() - timedelta(hours=1),
            heartbeat_at=heartbeat_at,
        )
    return job


def assert_refused(job_id, version: str) -> EditJob:
    job = wait_for_state(job_id, State.FAILED, timeout=120)
    assert job.error_code == "model_unknown"
    assert version[:12] in job.error, job.error
    assert job.lease_id is None
    time.sleep(1)  # a duplicate delivery would add a second event
    assert audit_count(job_id, "job.failed") == 1
    assert audit_count(job_id, "job.started") == 0
    return job


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_reclaimed_job_pinned_to_a_retired_or_unknown_version_fails_cleanly(
    celery_worker, registry_people, model_bundle, child_bundle
):
    people = registry_people
    admin1, mapprover, req = people["admin1"], people["mapprover"], people["req"]
    demo = services.register_bundle(source=Path(model_bundle), user=admin1, name="demo")
    child = services.register_bundle(source=child_bundle, user=admin1, name="child")
    services.approve(demo, mapprover, bundle_sha256=demo.version)
    services.activate(demo, admin1, bundle_sha256=demo.version)
    services.retire(child, admin1, reason="withdrawn in test")
    stale = timezone.now() - timedelta(hours=1)

    # Re-delivery (the message of a killed worker back on the queue): a retired version.
    redelivered = submit_held_by_dead_worker(req, 1, child.version, heartbeat_at=stale)
    job = assert_refused(redelivered.pk, child.version)
    assert "retired" in job.error

    # The sweeper: the job's worker still heart-beat when its message came, so that
    # delivery leaves it alone; once the lease expired the sweeper re-publishes it.
    unknown = "0123abcd" * 8
    swept = submit_held_by_dead_worker(req, 2, unknown, heartbeat_at=timezone.now())
    time.sleep(3)  # the live-lease delivery is skipped: the job stays running
    assert EditJob.objects.get(pk=swept.pk).state == State.RUNNING
    EditJob.objects.filter(pk=swept.pk).update(
        heartbeat_at=stale, enqueued_at=timezone.now() - timedelta(hours=1)
    )
    assert sweep()["sent"] >= 1
    assert EditJob.objects.get(pk=swept.pk).enqueue_count == 2
    assert_refused(swept.pk, unknown)
