"""The worker re-checks approvals right before running: forged or tampered jobs never run."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.uploads import validate_image
from tests import catalog
from tests.approvals.test_four_eyes import people, png  # noqa: F401 - fixture
from tests.jobs.conftest import wait_for_state


def awaiting(user, seed) -> EditJob:
    job, _ = job_services.submit(user=user, image=validate_image(png(seed)), edits=catalog.request(catalog.sensitive()),
                                 purpose="retouch for the annual report", consent=True, source="api")
    assert job.state == State.AWAITING_APPROVAL
    return job


def events_of(job, action):
    return AuditEvent.objects.filter(subject=f"job:{job.pk}", action=action).count()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_forced_into_the_queue_without_approval_is_sent_back(celery_worker, people):  # noqa: F811
    job = awaiting(people["req"], 11)
    # Someone with database access forges the approval flag and queues the job.
    EditJob.objects.filter(pk=job.pk).update(state=State.QUEUED, approved_params_sha256=job.params_sha256)
    job_services.enqueue(job.pk)
    job = wait_for_state(job.pk, State.AWAITING_APPROVAL, timeout=60)
    assert job.approved_params_sha256 == "" and job.started_at is None
    assert events_of(job, "job.approval_required") == 1 and events_of(job, "job.started") == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_parameters_were_changed_after_approval_fails(celery_worker, people):  # noqa: F811
    job = awaiting(people["req"], 12)
    # The edits are changed behind the platform's back, and the job is pushed to the queue.
    EditJob.objects.filter(pk=job.pk).update(edits=catalog.request(catalog.sensitive(), fraction=1.0), state=State.QUEUED,
                                             approved_params_sha256=job.params_sha256)
    job_services.enqueue(job.pk)
    job = wait_for_state(job.pk, State.FAILED, timeout=60)
    assert job.error_code == "parameters_tampered" and job.started_at is None
    failed = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.failed")
    assert failed.payload["error_code"] == "parameters_tampered"
    assert events_of(job, "job.started") == 0
