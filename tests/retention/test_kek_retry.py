"""An unavailable key-encryption key at job time: the job retries, then succeeds.

Real parts: PostgreSQL, Redis, a `celery worker` process with its own KEK file. The
file is made unreadable (a directory takes its place: the tests run as root, which
file modes do not stop) after the job was submitted and before the worker takes it;
the worker must give the job back to the queue (stage ``retrying``, the reason in its
error and the worker's log) instead of failing it, and finish it once the file is back.
"""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from editplatform.accounts.roles import REQUESTER
from editplatform.jobs.models import EditJob
from tests.audit.helpers import make_user
from tests.jobs import images
from tests.jobs.conftest import (
    api_client,
    gpu_queue_to_ourselves,
    submit_via_api,
    wait_for,
    wait_for_state,
    worker_env_with,
)

pytestmark = [pytest.mark.redis, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_unavailable_kek_retries_the_job_until_the_key_is_back(
    start_worker, model_bundle, settings, tmp_path
):
    kek = tmp_path / "artifact_kek"
    kek.write_bytes(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    settings.ARTIFACT_KEK_FILE = str(kek)  # this process stores the original under it
    alice = make_user("alice", REQUESTER.name)
    aside = tmp_path / "artifact_kek.aside"
    with gpu_queue_to_ourselves():
        response = submit_via_api(api_client(alice), images.jpeg((120, 90)))
        assert response.status_code == 201, response.content
        job = EditJob.objects.get(pk=response.json()["id"])
        os.rename(kek, aside)
        kek.mkdir()  # unreadable: reading it fails (EISDIR), and it exists, so no new KEK
        try:
            worker = start_worker(
                "kek-retry", queues="gpu", env=worker_env_with(ARTIFACT_KEK_FILE=str(kek))
            )

            def retried():
                row = EditJob.objects.get(pk=job.pk)
                return row if row.stage == "retrying" else None

            held_back = wait_for(retried, timeout=120, what="the job to be given back for a retry")
            assert held_back.state in ("queued", "running"), held_back.state
            assert "key-encryption key" in held_back.error, held_back.error
            assert "transient fault" in worker.log() and "key-encryption key" in worker.log()
        finally:
            kek.rmdir()
            os.rename(aside, kek)
        done = wait_for_state(job.pk, {"succeeded", "failed"}, timeout=180)
        worker.stop()
    assert done.state == "succeeded", (done.error_code, done.error)
    assert done.attempts >= 2 and done.edited_id and done.latent_id
