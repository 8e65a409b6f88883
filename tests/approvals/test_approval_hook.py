"""The jobs layer asks the approvals app through a hook; with no hook, jobs fail closed."""

from __future__ import annotations

import contextlib

import pytest

from audit.models import AuditEvent
from editplatform.approvals import services
from editplatform.jobs import approval_hook, engine, policy
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.tasks import run_edit_job
from tests import catalog
from tests.approvals.test_four_eyes import people, png, sensitive_job  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def no_hook():
    """The jobs layer as it is when the approvals app is not installed."""
    registered = approval_hook.get()
    approval_hook.register(None)
    try:
        yield
    finally:
        approval_hook.register(registered)


def events_of(job, action) -> int:
    return AuditEvent.objects.filter(subject=f"job:{job.pk}", action=action).count()


def test_the_approvals_app_registers_its_four_eyes_check():
    assert approval_hook.get() == services.approval_satisfied


def test_without_a_hook_an_approved_sensitive_job_never_runs(people):  # noqa: F811
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    assert job.state == State.QUEUED
    catalog_now = engine.get_catalog().catalog
    assert policy.may_run(job, catalog_now)  # the registered hook finds the approval
    with no_hook():
        assert not policy.may_run(job, catalog_now)
        assert run_edit_job.apply(args=[str(job.pk)]).get() == "skipped"
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and job.started_at is None and job.attempts == 0
    assert events_of(job, "job.approval_required") == 1 and events_of(job, "job.started") == 0


def test_without_a_hook_a_job_that_needs_no_approval_still_may_run(people):  # noqa: F811
    job, _ = job_services.submit(
        user=people["req"],
        image=png(3),
        edits=catalog.request(),
        purpose="plain retouch, nothing sensitive",
        consent=True,
        source="api",
    )
    assert job.state == State.QUEUED
    with no_hook():
        assert policy.may_run(EditJob.objects.get(pk=job.pk), engine.get_catalog().catalog)
