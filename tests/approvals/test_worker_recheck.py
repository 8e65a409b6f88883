"""The real worker computes sensitive jobs and holds their outputs; tampered rows never run."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.uploads import validate_image
from tests import catalog
from tests.approvals.test_four_eyes import people, png  # noqa: F401 - fixture
from tests.jobs.conftest import wait_for_state


def events_of(job, action):
    return AuditEvent.objects.filter(subject=f"job:{job.pk}", action=action).count()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_computes_a_sensitive_job_and_holds_its_outputs(celery_worker, people):  # noqa: F811
    job, _ = job_services.submit(
        user=people["req"],
        image=validate_image(png(11)),
        edits=catalog.request(catalog.sensitive()),
        purpose="retouch for the annual report",
        consent=True,
        source="api",
    )
    job = wait_for_state(job.pk, State.AWAITING_APPROVAL, timeout=90)
    assert job.edited_id and job.latent_id and job.held_at and job.approved_params_sha256 == ""
    assert events_of(job, "job.held") == 1 and events_of(job, "job.succeeded") == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_parameters_were_changed_fails_before_it_runs(celery_worker, people):  # noqa: F811
    with transaction.atomic():  # the task is published when this block commits
        job, _ = job_services.submit(
            user=people["req"],
            image=validate_image(png(12)),
            edits=catalog.request(),
            purpose="retouch for the annual report",
            consent=True,
            source="api",
        )
        # The edits are changed behind the platform's back before the worker gets the job.
        EditJob.objects.filter(pk=job.pk).update(
            edits=catalog.request(catalog.sensitive(), fraction=1.0)
        )
    job = wait_for_state(job.pk, State.FAILED, timeout=60)
    assert job.error_code == "parameters_tampered" and job.started_at is None
    failed = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.failed")
    assert failed.payload["error_code"] == "parameters_tampered"
    assert events_of(job, "job.started") == 0
