"""Four-eyes approval of held outputs: who may decide, how many, binding, expiry, audit.

Compute, then release: a sensitive job is computed first (the real task, in this
process) and its outputs held; approval releases them, rejection, expiry or
cancellation destroys their bytes (read back from the storage itself).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.utils import timezone

from audit.models import AuditEvent
from editplatform.accounts.roles import ensure_groups
from editplatform.approvals import services
from editplatform.approvals.models import Decision
from editplatform.core.errors import DomainError
from editplatform.jobs import access, holding, keyed_ids, policy
from editplatform.jobs import services as job_services
from editplatform.jobs.models import Artifact, EditJob, sealed_name
from editplatform.jobs.states import State
from editplatform.jobs.tasks import run_edit_job
from editplatform.jobs.uploads import validate_image
from tests import catalog
from tests.jobs import images
from tests.jobs.helpers import logged


def png(seed: int = 1) -> bytes:
    """A catalogue photo in the demo model's domain (tests.jobs.images), one per seed."""
    return images.png((48, 48), seed=seed)


@pytest.fixture
def people(db, model_bundle):
    groups = ensure_groups()
    users = {}
    for name, role in [
        ("req", "requester"),
        ("ap1", "approver"),
        ("ap2", "approver"),
        ("ap3", "approver"),
        ("rev", "reviewer"),
    ]:
        user = get_user_model().objects.create_user(name, password="x" * 20)
        user.groups.add(groups[role])
        users[name] = user
    # a requester who is also an approver (self-approval must still be refused)
    users["req"].groups.add(groups["approver"])
    return users


def submitted_sensitive(user, seed=1, **kwargs) -> EditJob:
    job, created = job_services.submit(
        user=user,
        image=validate_image(png(seed)),
        edits=catalog.request(catalog.sensitive()),
        purpose="campaign visual, consent on file",
        consent=True,
        source="portal",
        **kwargs,
    )
    assert created and job.needs_approval
    assert job.state == State.QUEUED  # computed first, like any job
    return job


def sensitive_job(user, seed=1, **kwargs) -> EditJob:
    """A sensitive job computed by the real task: its outputs are held."""
    job = submitted_sensitive(user, seed, **kwargs)
    assert run_edit_job.apply(args=[str(job.pk)]).get() == "held"
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL, job.error
    assert job.edited_id and job.reconstruction_id and job.latent_id and job.held_at
    return job


def approve(job, user, **kwargs):
    return services.approve(
        job,
        user,
        params_sha256=job.params_sha256,
        outputs_sha256=policy.outputs_sha256(job),
        **kwargs,
    )


def stored(sha: str) -> bool:
    return default_storage.exists(sealed_name(sha))


def events_of(job, action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(subject=f"job:{job.pk}", action=action))


def test_a_plain_edit_needs_no_approval_and_is_released_at_once(people):
    job, _ = job_services.submit(
        user=people["req"],
        image=validate_image(png(2)),
        edits=catalog.request(),
        purpose="catalog refresh",
        consent=True,
        source="portal",
    )
    assert job.state == State.QUEUED and not job.needs_approval
    run_edit_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (
        job.state == State.SUCCEEDED
        and access.readable_artifact(people["req"], job, "edited") is not None
    )


def test_a_sensitive_job_is_computed_and_its_outputs_held(people):
    job = sensitive_job(people["req"])
    held = events_of(job, "job.held")
    assert len(held) == 1 and not events_of(job, "job.succeeded")
    # Keyed ids (issue 17): commitments, and the outputs hash keyed under the original's salt.
    assert held[0].payload["outputs"]["edited"] == logged(job.edited_id)
    assert keyed_ids.confirm_derived(
        held[0].payload["outputs_sha256"],
        "outputs_sha256",
        policy.outputs_sha256(job),
        job.original,
    )
    assert f"artifact:{logged(job.edited_id)}" in held[0].subjects
    assert all(stored(sha) for sha in policy.output_hashes(job).values())
    # Held outputs: the requester (even one holding the approver role) and the API see nothing.
    assert access.readable_artifact(people["req"], job, "edited") is None
    assert access.readable_artifact(people["req"], job, "original") is not None
    assert access.readable_artifact(None, job, "edited") is None
    assert access.readable_artifact(people["ap1"], job, "edited") is not None
    assert access.readable_artifact(people["rev"], job, "latent") is not None


def test_self_approval_is_refused(people):
    job = sensitive_job(people["req"])
    with pytest.raises(DomainError, match="own job"):
        approve(job, people["req"])
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and not Decision.objects.exists()


def test_only_approvers_decide(people):
    job = sensitive_job(people["req"])
    with pytest.raises(PermissionDenied):
        approve(job, people["rev"])


def test_a_job_still_computing_cannot_be_decided(people):
    job = submitted_sensitive(people["req"])
    with pytest.raises(DomainError, match="not held"):
        approve(job, people["ap1"])


def test_one_approval_releases_the_held_outputs_by_default(people):
    job = sensitive_job(people["req"])
    job = approve(job, people["ap1"], comment="ok")
    assert job.state == State.SUCCEEDED and job.approved_params_sha256 == job.params_sha256
    assert access.readable_artifact(people["req"], job, "edited") is not None
    released = events_of(job, "job.released")
    assert len(released) == 1 and released[0].actor_name == "ap1"
    assert keyed_ids.confirm_derived(  # keyed under the original's salt (issue 17)
        released[0].payload["outputs_sha256"],
        "outputs_sha256",
        policy.outputs_sha256(job),
        job.original,
    )


def test_n_approvals_are_required_when_configured(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    job = approve(job, people["ap1"])
    assert job.state == State.AWAITING_APPROVAL
    with pytest.raises(DomainError, match="already decided"):
        approve(job, people["ap1"])
    job = approve(job, people["ap2"])
    assert job.state == State.SUCCEEDED and services.approval_satisfied(job)


def test_an_approval_for_other_parameters_is_refused(people):
    job = sensitive_job(people["req"])
    with pytest.raises(DomainError, match="changed"):
        services.approve(
            job, people["ap1"], params_sha256="0" * 64, outputs_sha256=policy.outputs_sha256(job)
        )
    assert job.state == State.AWAITING_APPROVAL


def test_an_approval_with_tampered_output_hashes_is_refused(people):
    job = sensitive_job(people["req"])
    with pytest.raises(DomainError, match="outputs differ"):
        services.approve(
            job, people["ap1"], params_sha256=job.params_sha256, outputs_sha256="f" * 64
        )
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and not Decision.objects.exists()


def test_outputs_swapped_after_an_approval_void_it_and_block_the_release(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    approve(job, people["ap1"])
    # Someone with database access swaps the held edited image for the reconstruction.
    EditJob.objects.filter(pk=job.pk).update(edited=job.reconstruction_id)
    job.refresh_from_db()
    assert services.valid_approvals(job) == []
    # A release bound to the hashes the approvers saw is refused at release time, too.
    with pytest.raises(DomainError, match="different outputs"):
        job_services.release_approved(
            job,
            approver=people["ap2"],
            params_sha256=job.params_sha256,
            outputs_sha256=Decision.objects.get(job=job).outputs_sha256,
        )
    job = approve(job, people["ap2"])  # ap2 reviews what is there now: one valid approval of two
    assert job.state == State.AWAITING_APPROVAL


def test_a_parameter_change_voids_approvals(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    approve(job, people["ap1"])
    EditJob.objects.filter(pk=job.pk).update(
        edits=catalog.request(catalog.sensitive(), fraction=1.0)
    )
    job.refresh_from_db()
    assert services.valid_approvals(job) == []
    with pytest.raises(DomainError, match="changed"):
        approve(job, people["ap2"])


def test_expired_approvals_do_not_count(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    approve(job, people["ap1"])
    Decision.objects.filter(job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    job = approve(job, people["ap2"])
    assert job.state == State.AWAITING_APPROVAL  # one valid approval of two
    assert [d.approver.username for d in services.valid_approvals(job)] == ["ap2"]
    assert not services.approval_satisfied(job, now=timezone.now() + timedelta(hours=10_000))


def test_an_approver_who_lost_the_role_no_longer_counts(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    job = approve(job, people["ap1"])
    people["ap1"].groups.remove(ensure_groups()["approver"])
    assert services.valid_approvals(job) == []


def test_rejection_needs_a_reason_ends_the_job_and_destroys_the_held_outputs(
    people, django_capture_on_commit_callbacks
):
    job = sensitive_job(people["req"])
    held = policy.output_hashes(job)
    held_logged = {kind: logged(sha) for kind, sha in held.items()}  # keyed ids (issue 17)
    with pytest.raises(DomainError, match="reason"):
        services.reject(job, people["ap1"], reason="  ")
    with django_capture_on_commit_callbacks(execute=True):  # bytes go once the decision commits
        job = services.reject(job, people["ap1"], reason="no consent record for this person")
    assert job.state == State.REJECTED
    assert job.edited_id is None and job.reconstruction_id is None and job.latent_id is None
    assert not any(stored(sha) for sha in held.values())  # bytes gone from storage
    assert not Artifact.objects.filter(sha256__in=held.values()).exists()
    assert stored(job.original_id)  # the requester's upload stays
    destroyed = events_of(job, "job.outputs_destroyed")
    assert (
        len(destroyed) == 1 and destroyed[0].payload["held_outputs"] == held_logged
    )  # their keyed ids stay in the log
    with pytest.raises(DomainError):
        approve(job, people["ap2"])


def test_held_outputs_expire_and_are_destroyed(
    people, settings, django_capture_on_commit_callbacks
):
    settings.APPROVAL_TTL_HOURS = 2
    job = sensitive_job(people["req"])
    fresh = sensitive_job(people["req"], seed=5)
    held = policy.output_hashes(job)
    EditJob.objects.filter(pk=job.pk).update(held_at=timezone.now() - timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert holding.expire_held() == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.state == State.EXPIRED and job.error_code == "approval_expired"
    # bytes the fresh job also uses (e.g. an identical alignment transform) are kept for it
    shared = set(policy.output_hashes(fresh).values())
    own = {kind: sha for kind, sha in held.items() if sha and sha not in shared}
    assert own and not any(stored(sha) for sha in own.values())
    assert fresh.state == State.AWAITING_APPROVAL and stored(fresh.edited_id)
    assert events_of(job, "job.expired") and events_of(job, "job.outputs_destroyed")
    assert "expired" in events_of(job, "job.expired")[0].summary


def test_cancelling_a_held_job_destroys_its_outputs(people, django_capture_on_commit_callbacks):
    job = sensitive_job(people["req"])
    held = policy.output_hashes(job)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.cancel(job, people["req"])
    assert job.state == State.CANCELLED and not any(stored(sha) for sha in held.values())


def test_each_decision_is_an_audit_event_with_a_summary(people, settings):
    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    approve(job, people["ap1"], comment="looks right")
    other = sensitive_job(people["req"], seed=3)
    services.reject(other, people["ap2"], reason="purpose too vague")
    approved = AuditEvent.objects.get(action="job.approved", subject=f"job:{job.pk}")
    assert approved.actor_name == "ap1"
    assert (
        keyed_ids.confirm_derived(
            approved.payload["params_sha256"], "params_sha256", job.params_sha256, job.original
        )
        and approved.payload["approvals"] == 1
    )
    assert keyed_ids.confirm_derived(
        approved.payload["outputs_sha256"],
        "outputs_sha256",
        policy.outputs_sha256(job),
        job.original,
    )
    assert approved.summary == f"ap1 approved job {str(job.pk)[:8]} (1/2): “looks right”"
    rejected = AuditEvent.objects.get(action="job.rejected", subject=f"job:{other.pk}")
    assert rejected.actor_name == "ap2" and rejected.payload["reason"] == "purpose too vague"
    assert "purpose too vague" in rejected.summary


def test_the_queue_shows_others_held_jobs_only(people):
    own = sensitive_job(people["req"])
    computing = submitted_sensitive(people["req"], seed=4)
    assert own not in services.awaiting_for(people["req"])
    assert computing not in services.awaiting_for(people["ap1"])
    assert list(services.awaiting_for(people["ap1"])) == [own]
    approve(own, people["ap1"])
    assert list(services.awaiting_for(people["ap2"])) == []
    assert list(services.awaiting_for(people["rev"])) == []


def test_approvers_keep_read_access_to_the_jobs_they_decided(people):
    approved = approve(sensitive_job(people["req"]), people["ap1"])
    rejected = services.reject(
        sensitive_job(people["req"], seed=6), people["ap2"], reason="not this one"
    )
    assert approved in EditJob.objects.visible_to(people["ap1"])
    assert rejected in EditJob.objects.visible_to(people["ap2"])
    assert approved not in EditJob.objects.visible_to(
        people["ap3"]
    )  # decided by someone else, released
    assert rejected not in EditJob.objects.visible_to(people["ap1"])


def test_a_rejected_job_can_be_resubmitted_with_changes_linked_to_it(people):
    rejected = services.reject(sensitive_job(people["req"]), people["ap1"], reason="too strong")
    revised = submitted_sensitive(people["req"], seed=1, resubmitted_from=rejected)
    assert revised.resubmitted_from_id == rejected.pk
    assert list(rejected.resubmissions.all()) == [revised]
    submitted = AuditEvent.objects.get(action="job.submitted", subject=f"job:{revised.pk}")
    assert submitted.payload["resubmitted_from"] == str(rejected.pk)
    assert (
        f"job:{rejected.pk}" in submitted.subjects
    )  # the earlier job's timeline shows the revision
    with pytest.raises(DomainError, match="only a rejected or expired"):
        submitted_sensitive(people["req"], seed=2, resubmitted_from=revised)
    stranger = get_user_model().objects.create_user("other-requester", password="x" * 20)
    stranger.groups.add(ensure_groups()["requester"])
    with pytest.raises(DomainError, match="only the requester"):
        job_services.submit(
            user=stranger,
            image=validate_image(png(1)),
            edits=catalog.request(),
            purpose="not mine to revise",
            consent=True,
            source="portal",
            resubmitted_from=rejected,
        )


def test_an_approval_stops_counting_when_the_approvers_account_is_reset(people, settings):
    """Four-eyes on account recovery: approvals given before someone else reset the
    approver's second factor do not count until a second admin confirms the reset."""
    from editplatform.accounts.recovery import open_recovery

    settings.APPROVALS_REQUIRED = 2
    job = sensitive_job(people["req"])
    job = approve(job, people["ap1"])
    assert [d.approver for d in services.valid_approvals(job)] == [people["ap1"]]
    admin = get_user_model().objects.create_user("adm", password="x" * 20)
    admin.groups.add(ensure_groups()["admin"])
    assert open_recovery(people["ap1"], "2fa", by=admin) is not None
    assert services.valid_approvals(job) == []
