"""Jobs on real Celery worker processes: Redis and the embedded broker, SIGKILL, broker
outage, two workers on one queue. No mocks: PostgreSQL/SQLite, Redis/filesystem broker,
`celery worker` subprocesses and the real model."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings

from editplatform.jobs import services, sweeper
from editplatform.jobs.models import EditJob
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import (
    api_client,
    audit_count,
    celery_publishing_to,
    gpu_queue_to_ourselves,
    submit_via_api,
    wait_for,
    wait_for_state,
    worker_env_with,
)
from tests.jobs.helpers import assert_job_produced_everything
from tests.services import free_port, redis_server

SLOW_APP = "tests.jobs.slow_worker"  # progress reports sleep TEST_PROGRESS_DELAY_MS (test-only)


def _submit(user, **kwargs) -> EditJob:
    response = submit_via_api(api_client(user), images.jpeg((120, 90)), **kwargs)
    assert response.status_code == 201, response.content
    return EditJob.objects.get(pk=response.json()["id"])


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_api_job_runs_on_a_worker_over_redis(worker, requester, bundle):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    job = _submit(requester)
    job = wait_for_state(job.pk, {"succeeded", "failed"})
    assert_job_produced_everything(job, bundle)
    assert job.worker.startswith("session@") and job.attempts == 1
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert set(body["artifacts"]) == {
        "original",
        "reconstruction",
        "edited",
        "latent",
        "result",
        "aligned",
        "transform",
    }
    download = api_client(requester).get(body["artifacts"]["edited"]["url"])
    assert download.status_code == 200 and download["Content-Type"] == "image/png"


@pytest.mark.embedded
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_api_job_runs_on_a_worker_over_the_embedded_broker(worker, requester, bundle):
    assert settings.EMBEDDED_BROKER and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    job = _submit(requester)
    job = wait_for_state(job.pk, {"succeeded", "failed"})
    assert_job_produced_everything(job, bundle)


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_job_the_job_still_completes_exactly_once(
    start_worker, requester, bundle, settings
):
    settings.JOB_LEASE_SECONDS = 3
    slow = worker_env_with(TEST_PROGRESS_DELAY_MS=700, JOB_LEASE_SECONDS=3)
    with gpu_queue_to_ourselves():
        victim = start_worker("victim", queues="gpu", env=slow, app=SLOW_APP)
        job = _submit(requester)
        wait_for(
            lambda: EditJob.objects.filter(pk=job.pk, state="running", progress__gt=0).exists(),
            timeout=60,
            interval=0.05,
            what="the job to be running with progress",
        )
        victim.kill()  # SIGKILL the worker and its pool child mid-job
        assert "each progress report waits 700 ms" in victim.log()
        job.refresh_from_db()
        assert (
            job.state == "running" and 0 < job.progress < 100 and job.worker.startswith("victim@")
        )
        rescuer = start_worker("rescuer", queues="gpu", env=worker_env_with(JOB_LEASE_SECONDS=3))
        # The beat's sweeper notices the stale heartbeat and re-publishes the job.
        wait_for(
            lambda: sweeper.sweep()["sent"],
            timeout=30,
            interval=0.5,
            what="the sweeper to re-publish",
        )
        job = wait_for_state(job.pk, {"succeeded", "failed"}, timeout=60)
        rescuer.stop()
    assert_job_produced_everything(job, bundle)
    assert job.attempts == 2 and job.worker.startswith("rescuer@")
    assert audit_count(job.pk, "job.started") == 2 and audit_count(job.pk, "job.succeeded") == 1


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_broker_down_at_submit_the_job_is_kept_and_runs_when_it_is_back(
    start_worker, requester, bundle
):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with celery_publishing_to(url):
        with redis_server(port=port):
            worker = start_worker(
                "outage", queues="gpu", env=worker_env_with(CELERY_BROKER_URL=url)
            )
        # The broker is gone now: the submit still succeeds and keeps the job.
        job = _submit(requester)
        job.refresh_from_db()
        assert job.state == "queued" and job.enqueued_at is None and "Error" in job.enqueue_error
        assert audit_count(job.pk, "job.queued") == 1
        assert sweeper.sweep() == {"sent": 0, "failed": 1}  # still down
        with redis_server(port=port):  # a new, empty broker on the same address
            wait_for(
                lambda: sweeper.sweep()["sent"],
                timeout=30,
                interval=0.5,
                what="a successful re-publish",
            )
            job = wait_for_state(job.pk, {"succeeded", "failed"}, timeout=90)
            worker.stop()
    assert_job_produced_everything(job, bundle)
    assert job.attempts == 1 and job.enqueue_count == 1 and job.enqueue_error == ""


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_two_workers_drain_one_queue_and_no_job_runs_twice(
    start_worker, requester, bundle, batch_size
):
    env = worker_env_with(TEST_PROGRESS_DELAY_MS=50, JOB_BATCH_SIZE=batch_size)
    with gpu_queue_to_ourselves():
        workers = [
            start_worker(name, queues="gpu", env=env, app=SLOW_APP) for name in ("left", "right")
        ]
        jobs = [
            _submit(requester, edits=catalog.request_json(fraction=0.5 + i / 20))
            for i in range(1, 9)
        ]
        for job in jobs:  # every job delivered twice: at-least-once delivery, exactly-once effects
            assert services.enqueue(job.pk)
        done = [wait_for_state(job.pk, {"succeeded", "failed"}, timeout=120) for job in jobs]
        for worker in workers:
            worker.stop()
    assert {job.state for job in done} == {"succeeded"}
    assert all(job.attempts == 1 and job.enqueue_count == 2 for job in done)
    assert all(
        audit_count(job.pk, "job.started") == 1 == audit_count(job.pk, "job.succeeded")
        for job in done
    )
    assert {job.worker.split("@")[0] for job in done} == {"left", "right"}
    with contextlib.suppress(Exception):
        assert_job_produced_everything(done[0], bundle)


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_only_workers_that_run_jobs_warm_the_model_up(worker, start_worker):
    """JOB_WARM_UP=auto: a worker on the gpu queue warms its model up at start; one that
    only serves `default` (the beat's duties) loads it but skips the warm-up."""
    cpu = start_worker(queues="default")
    wait_for(lambda: "model warm-up skipped" in cpu.log(), timeout=90, what="cpu worker start")
    assert "model warmed up" not in cpu.log()
    wait_for(lambda: "model warmed up at batch sizes 1 and 1" in worker.log(), what="warm-up")
    cpu.stop()
