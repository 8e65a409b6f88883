"""Micro-batching workers (JOB_BATCH_SIZE > 1) on real Celery worker processes, Redis
and PostgreSQL, with the real model: one delivery runs several queued jobs as one
forward pass, and every job keeps its own outcome, events and outputs.

Each test queues its jobs while no worker consumes the gpu queue, then starts a
batching worker, so the first delivery finds the others queued and batches them.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from editplatform.jobs import services, sweeper
from editplatform.jobs.models import EditJob
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import (
    api_client,
    audit_count,
    gpu_queue_to_ourselves,
    submit_via_api,
    wait_for,
    wait_for_state,
    worker_env_with,
)
from tests.jobs.helpers import assert_job_produced_everything

SLOW_APP = "tests.jobs.slow_worker"
DONE = {"succeeded", "failed", "cancelled", "awaiting_approval"}


def _submit(user, photo: bytes | None = None, *, fraction: float = 0.75) -> EditJob:
    response = submit_via_api(
        api_client(user),
        photo if photo is not None else images.jpeg((120, 90)),
        edits=catalog.request_json(fraction=fraction),
    )
    assert response.status_code == 201, response.content
    return EditJob.objects.get(pk=response.json()["id"])


def _blank_photo() -> bytes:
    """A photo with no subject: alignment fails (``no_subject``), a per-job failure."""
    rng = np.random.default_rng(3)
    blank = Image.fromarray(np.clip(rng.normal(200, 1.0, (300, 400, 3)), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    blank.save(buffer, format="PNG")
    return buffer.getvalue()


def _outputs(job: EditJob) -> dict:
    return {
        "latent": job.latent_id,
        "reconstruction": job.reconstruction_id,
        "edited": job.edited_id,
        "result": job.result_id,
        "aligned": job.aligned_id,
    }


def _assert_one_chain(job: EditJob, end: str) -> None:
    """One run: claimed once, one started event, one ending event of the expected kind."""
    assert job.attempts == 1, (job.pk, job.attempts)
    assert audit_count(job.pk, "job.submitted") == 1
    assert audit_count(job.pk, "job.started") == 1
    for action in ("job.succeeded", "job.failed", "job.cancelled", "job.held"):
        assert audit_count(job.pk, action) == (1 if action == end else 0), (job.pk, action)


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_its_jobs_in_one_pass_and_a_bad_one_fails_alone(
    start_worker, requester, bundle
):
    with gpu_queue_to_ourselves():
        jobs = [_submit(requester, fraction=0.5 + i / 10) for i in range(2)]
        jobs.append(_submit(requester, _blank_photo()))
        jobs += [_submit(requester, fraction=0.8 + i / 20) for i in range(2)]
        worker = start_worker("batcher", queues="gpu", env=worker_env_with(JOB_BATCH_SIZE=8))
        done = [wait_for_state(job.pk, DONE, timeout=180) for job in jobs]
        worker.stop()
    bad = done.pop(2)
    assert bad.state == "failed" and bad.error_code == "no_subject", (bad.state, bad.error)
    _assert_one_chain(bad, "job.failed")
    for job in done:
        assert_job_produced_everything(job, bundle)
        _assert_one_chain(job, "job.succeeded")
        # the four good jobs went through one model pass together
        assert job.timings["batch"] == 4, job.timings
        assert job.worker.startswith("batcher@")


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancelling_one_job_of_a_batch_stops_only_that_job(start_worker, requester, bundle):
    with gpu_queue_to_ourselves():
        jobs = [_submit(requester, fraction=0.5 + i / 10) for i in range(4)]
        worker = start_worker(
            "slowbatch",
            queues="gpu",
            env=worker_env_with(JOB_BATCH_SIZE=4, TEST_PROGRESS_DELAY_MS=400),
            app=SLOW_APP,
        )
        wait_for(
            lambda: (
                EditJob.objects.filter(pk=jobs[0].pk, progress__gt=0).exists()
                and EditJob.objects.filter(pk__in=[j.pk for j in jobs], state="running").count()
                == 4
            ),
            timeout=90,
            interval=0.05,
            what="the batch to be running",
        )
        victim = EditJob.objects.get(pk=jobs[2].pk)
        services.cancel(victim, requester)
        done = [wait_for_state(job.pk, DONE, timeout=180) for job in jobs]
        worker.stop()
    cancelled = done.pop(2)
    assert cancelled.state == "cancelled" and cancelled.latent_id is None
    _assert_one_chain(cancelled, "job.cancelled")
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(subject=f"job:{cancelled.pk}", action="job.cancelled")
    assert event.payload["while"] == "running"
    for job in done:
        assert_job_produced_everything(job, bundle)
        _assert_one_chain(job, "job.succeeded")
        # the victim was cancelled before or after the model pass: the others ran together
        assert job.timings["batch"] in (3, 4)


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_gives_the_same_bytes_alone_and_inside_a_batch(start_worker, requester, bundle):
    photo = images.jpeg((120, 90), seed=5)
    env = worker_env_with(JOB_BATCH_SIZE=4)
    with gpu_queue_to_ourselves():
        alone = _submit(requester, photo, fraction=0.9)
        worker = start_worker("alone", queues="gpu", env=env)
        alone = wait_for_state(alone.pk, DONE, timeout=120)
        worker.stop()
        others = [_submit(requester, images.jpeg((120, 90), seed=20 + i)) for i in range(3)]
        again = _submit(requester, photo, fraction=0.9)  # the last position of the batch
        worker = start_worker("together", queues="gpu", env=env)
        batch = [wait_for_state(job.pk, DONE, timeout=180) for job in [*others, again]]
        worker.stop()
    again = batch[-1]
    assert alone.state == again.state == "succeeded"
    # alone: the one-job path; again: the batched path (both on the padded model)
    assert "batch" not in alone.timings and again.timings["batch"] == 4
    # content-addressed: equal ids are byte-identical latents and images
    assert _outputs(again) == _outputs(alone)
    # the domain gate judged the batch in one pass: the same report as alone
    assert again.domain_report == alone.domain_report and alone.domain_report["gated"]
    assert all(job.state == "succeeded" for job in batch)
    assert len({job.latent_id for job in batch}) == 4


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_every_job_completes_exactly_once(
    start_worker, requester, bundle, settings
):
    settings.JOB_LEASE_SECONDS = 3
    slow = worker_env_with(TEST_PROGRESS_DELAY_MS=500, JOB_LEASE_SECONDS=3, JOB_BATCH_SIZE=4)
    with gpu_queue_to_ourselves():
        jobs = [_submit(requester, fraction=0.5 + i / 10) for i in range(3)]
        victim = start_worker("victim", queues="gpu", env=slow, app=SLOW_APP)
        wait_for(
            lambda: (
                EditJob.objects.filter(
                    pk__in=[j.pk for j in jobs], state="running", worker__startswith="victim@"
                ).count()
                == 3
                and EditJob.objects.filter(pk=jobs[0].pk, progress__gt=0).exists()
            ),
            timeout=90,
            interval=0.05,
            what="the batch to be running",
        )
        victim.kill()
        rescuer = start_worker(
            "rescuer", queues="gpu", env=worker_env_with(JOB_LEASE_SECONDS=3, JOB_BATCH_SIZE=4)
        )
        wait_for(lambda: sweeper.sweep()["sent"], timeout=30, interval=0.5, what="a re-publish")
        done = [wait_for_state(job.pk, DONE, timeout=120) for job in jobs]
        rescuer.stop()
    for job in done:
        assert_job_produced_everything(job, bundle)
        assert job.attempts == 2 and job.worker.startswith("rescuer@")
        assert audit_count(job.pk, "job.started") == 2
        assert audit_count(job.pk, "job.succeeded") == 1
