"""The jobs layer asks the approvals app through a hook at release; with no hook, held
outputs are never released (fail closed), while computing stays harmless."""

from __future__ import annotations

import contextlib

import pytest

from audit.models import AuditEvent
from editplatform.approvals import services
from editplatform.core.errors import DomainError
from editplatform.jobs import access, approval_hook, engine, policy
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
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


def test_without_a_hook_held_outputs_are_never_released(people):  # noqa: F811
    with no_hook():
        job = sensitive_job(people["req"])  # computing needs no approval: the job is held
        assert not policy.may_release(job)
        with pytest.raises(DomainError, match="approvals do not cover"):
            services.approve(
                job,
                people["ap1"],
                params_sha256=job.params_sha256,
                outputs_sha256=policy.outputs_sha256(job),
            )
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and events_of(job, "job.released") == 0
    assert access.readable_artifact(people["req"], job, "edited") is None
    assert policy.may_release(job) is False  # no approval recorded: the refused one rolled back


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
