"""The task body in this process with the real model: idempotency, fencing, cancel, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from editplatform.jobs import execution, services, sweeper
from editplatform.jobs.models import EditJob, sealed_name
from editplatform.jobs.states import IllegalTransition, State, can_transition, transition
from editplatform.jobs.tasks import is_transient, run_edit_job
from tests.jobs import images
from tests.jobs.conftest import api_client, audit_count, submit_via_api
from tests.jobs.helpers import assert_job_produced_everything

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(requester, isolated_storage, model_bundle):
    response = submit_via_api(api_client(requester), images.jpeg((90, 70)))
    assert response.status_code == 201
    return EditJob.objects.get(pk=response.json()["id"])


def test_state_machine_allows_only_its_transitions():
    assert can_transition("queued", "running") and not can_transition("succeeded", "running")
    assert not can_transition("submitted", "running") and can_transition(
        "awaiting_approval", "rejected"
    )
    assert can_transition("running", "awaiting_approval") and can_transition(
        "awaiting_approval", "expired"
    )
    assert not can_transition("submitted", "awaiting_approval") and not can_transition(
        "queued", "awaiting_approval"
    )
    with pytest.raises(IllegalTransition):
        transition(EditJob(), State.SUCCEEDED, sources=frozenset({State.QUEUED}))


def test_task_runs_the_model_and_a_second_delivery_does_nothing(queued_job, bundle):
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "succeeded"
    assert_job_produced_everything(queued_job, bundle)
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "skipped"
    queued_job.refresh_from_db()
    assert queued_job.attempts == 1 and audit_count(queued_job.pk, "job.started") == 1


def test_only_one_of_two_racing_claims_wins(queued_job, bundle):
    first = execution.claim(queued_job.pk, "w1", bundle.catalog)
    second = execution.claim(queued_job.pk, "w2", bundle.catalog)
    assert first is not None and second is None


def test_a_dead_workers_lease_is_taken_over_and_fenced(queued_job, bundle, settings):
    settings.JOB_LEASE_SECONDS = 2
    stale = execution.claim(queued_job.pk, "dead-worker", bundle.catalog)
    EditJob.objects.filter(pk=queued_job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=10)
    )
    assert queued_job.pk in sweeper.due_job_ids()
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "succeeded"
    # The old holder wakes up: it can neither report nor commit.
    with pytest.raises(execution.LeaseLost):
        execution.report_progress(stale, "invert", 50)
    assert execution.fail(stale, "x", "late") is False
    queued_job.refresh_from_db()
    assert queued_job.state == "succeeded" and queued_job.attempts == 2
    assert (
        audit_count(queued_job.pk, "job.succeeded") == 1
        and audit_count(queued_job.pk, "job.failed") == 0
    )


def test_cancel_while_running_stops_at_the_next_step(queued_job, bundle, requester):
    run = execution.claim(queued_job.pk, "w1", bundle.catalog)
    job = services.cancel(EditJob.objects.get(pk=queued_job.pk), requester)
    assert job.state == "running" and job.cancel_requested
    with pytest.raises(execution.JobCancelled):
        execution.report_progress(run, "invert", 30)
    assert execution.cancelled(run)
    job.refresh_from_db()
    assert job.state == "cancelled" and audit_count(job.pk, "job.cancelled") == 1


def test_cancel_requested_before_the_worker_claims(queued_job, bundle, requester):
    services.cancel(queued_job, requester)
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "skipped"
    queued_job.refresh_from_db()
    assert queued_job.state == "cancelled" and queued_job.attempts == 0


def test_unreadable_original_fails_without_retry(queued_job):
    # The stored ciphertext is replaced: it no longer authenticates (never garbage input).
    name = sealed_name(queued_job.original_id)
    default_storage.delete(name)
    default_storage.save(name, ContentFile(b"\x89PNG\r\n\x1a\n broken"))
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "failed"
    queued_job.refresh_from_db()
    assert (
        queued_job.state == "failed"
        and queued_job.error_code == "artifact_integrity"
        and queued_job.attempts == 1
    )
    assert audit_count(queued_job.pk, "job.failed") == 1


def test_a_sensitive_job_is_computed_and_held_not_released(
    requester, isolated_storage, model_bundle, bundle
):
    sensitive = next(spec.name for spec in bundle.catalog if spec.sensitive)
    job = EditJob.objects.get(
        pk=submit_via_api(
            api_client(requester), images.png(), edits=f'{{"{sensitive}": 1}}'
        ).json()["id"]
    )
    assert job.state == State.QUEUED and job.needs_approval
    assert run_edit_job.apply(args=[str(job.pk)]).get() == "held"
    job.refresh_from_db()
    assert job.state == "awaiting_approval" and job.attempts == 1 and job.edited_id and job.held_at
    assert audit_count(job.pk, "job.held") == 1 and audit_count(job.pk, "job.succeeded") == 0
    assert run_edit_job.apply(args=[str(job.pk)]).get() == "skipped"  # a redelivery changes nothing


def test_gives_up_after_max_attempts(queued_job, bundle, settings):
    settings.JOB_MAX_ATTEMPTS = 1
    EditJob.objects.filter(pk=queued_job.pk).update(attempts=1)
    assert run_edit_job.apply(args=[str(queued_job.pk)]).get() == "skipped"
    queued_job.refresh_from_db()
    assert queued_job.state == "failed" and queued_job.error_code == "too_many_attempts"


def test_fault_classification():
    from django.db import OperationalError

    from editplatform.jobs.engine import ModelUnavailable
    from inversion.errors import InvalidImage

    assert is_transient(OperationalError("server closed the connection"))
    assert is_transient(ModelUnavailable("bundle missing")) and is_transient(OSError("S3 timeout"))
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_transient(InvalidImage("truncated")) and not is_transient(ValueError("bug"))


def test_sweeper_picks_only_due_jobs(queued_job, settings):
    now = timezone.now()
    assert sweeper.due_job_ids(now) == []  # just queued, publish pending: within the grace period
    EditJob.objects.filter(pk=queued_job.pk).update(enqueue_error="OperationalError: refused")
    assert sweeper.due_job_ids(now) == [queued_job.pk]
    EditJob.objects.filter(pk=queued_job.pk).update(enqueue_error="", enqueued_at=now)
    assert sweeper.due_job_ids(now) == []
    assert sweeper.due_job_ids(now + timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS + 1)) == [
        queued_job.pk
    ]


def test_beat_schedule_has_the_sweeper():
    from editplatform.celery import app

    entry = app.conf.beat_schedule["jobs-sweep"]
    assert entry["task"] == "jobs.sweep" and entry["options"]["queue"] == "default"


def test_one_sweep_republishes_a_backlog_larger_than_a_batch(
    requester, isolated_storage, model_bundle, monkeypatch
):
    """After a broker wipe every queued job is due at once: one sweep run takes them all,
    BATCH at a time, instead of BATCH per beat period."""
    ids = []
    for _ in range(5):
        response = submit_via_api(api_client(requester), images.jpeg((40, 30)))
        assert response.status_code == 201
        ids.append(response.json()["id"])
    EditJob.objects.filter(pk__in=ids).update(
        enqueued_at=None, enqueue_error="ConnectionError: broker lost"
    )
    before = dict(EditJob.objects.filter(pk__in=ids).values_list("pk", "enqueue_count"))
    monkeypatch.setattr(sweeper, "BATCH", 2)
    assert sweeper.sweep() == {"sent": 5, "failed": 0}
    assert sweeper.due_job_ids() == []
    after = dict(EditJob.objects.filter(pk__in=ids).values_list("pk", "enqueue_count"))
    assert after == {pk: count + 1 for pk, count in before.items()}  # each sent once
