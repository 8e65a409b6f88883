"""Four-eyes approval of sensitive edits: who may decide, how many, binding, expiry, audit."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from PIL import Image

from audit.models import AuditEvent
from editplatform.accounts.roles import ensure_groups
from editplatform.approvals import services
from editplatform.approvals.models import Decision
from editplatform.core.errors import DomainError
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.uploads import validate_image
from tests import catalog


def png(seed: int = 1) -> bytes:
    image = Image.new("RGB", (48, 48), (seed * 40 % 256, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def people(db, model_bundle):
    groups = ensure_groups()
    users = {}
    for name, role in [("req", "requester"), ("ap1", "approver"), ("ap2", "approver"), ("ap3", "approver"),
                       ("rev", "reviewer")]:
        user = get_user_model().objects.create_user(name, password="x" * 20)
        user.groups.add(groups[role])
        users[name] = user
    # a requester who is also an approver (self-approval must still be refused)
    users["req"].groups.add(groups["approver"])
    return users


def sensitive_job(user, seed=1) -> EditJob:
    job, created = job_services.submit(user=user, image=validate_image(png(seed)), edits=catalog.request(catalog.sensitive()),
                                       purpose="campaign visual, consent on file", consent=True, source="portal")
    assert created and job.state == State.AWAITING_APPROVAL and job.needs_approval
    return job


def test_a_plain_edit_needs_no_approval(people):
    job, _ = job_services.submit(user=people["req"], image=validate_image(png(2)), edits=catalog.request(),
                                 purpose="catalog refresh", consent=True, source="portal")
    assert job.state == State.QUEUED and not job.needs_approval
    assert services.approval_satisfied(job)


def test_self_approval_is_refused(people):
    job = sensitive_job(people["req"])
    with pytest.raises(DomainError, match="own job"):
        services.approve(job, people["req"], params_sha256=job.params_sha256)
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and not Decision.objects.exists()


def test_only_approvers_decide(people):
    job = sensitive_job(people["req"])
    with pytest.raises(PermissionDenied):
        services.approve(job, people["rev"], params_sha256=job.params_sha256)


def test_one_approval_releases_the_job_by_default(people):
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256, comment="ok")
    assert job.state == State.QUEUED and job.approved_params_sha256 == job.params_sha256
    assert services.approval_satisfied(job)


def test_n_approvals_are_required_when_configured(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    assert job.state == State.AWAITING_APPROVAL
    with pytest.raises(DomainError, match="already decided"):
        services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    job = services.approve(job, people["ap2"], params_sha256=job.params_sha256)
    assert job.state == State.QUEUED and services.approval_satisfied(job)


def test_an_approval_for_other_parameters_is_refused(people):
    job = sensitive_job(people["req"])
    stale = "0" * 64
    with pytest.raises(DomainError, match="changed"):
        services.approve(job, people["ap1"], params_sha256=stale)
    assert job.state == State.AWAITING_APPROVAL


def test_a_parameter_change_voids_approvals(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    # Someone with database access changes the edits after the first approval.
    EditJob.objects.filter(pk=job.pk).update(edits=catalog.request(catalog.sensitive(), fraction=1.0))
    job.refresh_from_db()
    assert services.valid_approvals(job) == []
    with pytest.raises(DomainError, match="changed"):
        services.approve(job, people["ap2"], params_sha256=job.params_sha256)


def test_expired_approvals_do_not_count(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    Decision.objects.filter(job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    job = services.approve(job, people["ap2"], params_sha256=job.params_sha256)
    assert job.state == State.AWAITING_APPROVAL  # one valid approval of two
    assert [d.approver.username for d in services.valid_approvals(job)] == ["ap2"]


def test_approval_of_a_queued_job_expiring_before_it_runs_stops_it(people):
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    assert services.approval_satisfied(job)
    assert not services.approval_satisfied(job, now=timezone.now() + timedelta(hours=10_000))


def test_an_approver_who_lost_the_role_no_longer_counts(people):
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    people["ap1"].groups.remove(ensure_groups()["approver"])
    assert not services.approval_satisfied(job)


def test_rejection_needs_a_reason_and_ends_the_job(people):
    job = sensitive_job(people["req"])
    with pytest.raises(DomainError, match="reason"):
        services.reject(job, people["ap1"], reason="  ")
    job = services.reject(job, people["ap1"], reason="no consent record for this person")
    assert job.state == State.REJECTED
    with pytest.raises(DomainError):
        services.approve(job, people["ap2"], params_sha256=job.params_sha256)


def test_each_decision_is_an_audit_event(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    other = sensitive_job(people["req"], seed=3)
    services.reject(other, people["ap2"], reason="purpose too vague")
    approved = AuditEvent.objects.get(action="job.approved", subject=f"job:{job.pk}")
    assert approved.actor_name == "ap1"
    assert approved.payload["params_sha256"] == job.params_sha256 and approved.payload["approvals"] == 1
    rejected = AuditEvent.objects.get(action="job.rejected", subject=f"job:{other.pk}")
    assert rejected.actor_name == "ap2" and rejected.payload["reason"] == "purpose too vague"


def test_the_queue_shows_others_jobs_only(people):
    own = sensitive_job(people["req"])
    assert own not in services.awaiting_for(people["req"])
    assert list(services.awaiting_for(people["ap1"])) == [own]
    services.approve(own, people["ap1"], params_sha256=own.params_sha256)
    assert list(services.awaiting_for(people["ap2"])) == []
    assert list(services.awaiting_for(people["rev"])) == []


def test_an_approval_stops_counting_when_the_approvers_account_is_reset(people, settings):
    """Four-eyes on account recovery: approvals given before someone else reset the
    approver's second factor do not count until a second admin confirms the reset."""
    from editplatform.accounts.recovery import open_recovery

    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    job = services.approve(job, people["ap1"], params_sha256=job.params_sha256)
    assert [d.approver for d in services.valid_approvals(job)] == [people["ap1"]]
    admin = get_user_model().objects.create_user("adm", password="x" * 20)
    admin.groups.add(ensure_groups()["admin"])
    assert open_recovery(people["ap1"], "2fa", by=admin) is not None
    assert services.valid_approvals(job) == []
