"""Fixtures of the provenance tests: a real job run on a worker, clones of it with their
own audit events, and a development C2PA chain generated into the test's own directory."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.db import transaction
from PIL import Image

from tests.jobs.conftest import (  # noqa: F401  (fixtures)
    api_client,
    bundle,
    fast_password_hasher,
    integration,
    make_user,
    requester,
    reviewer,
    submit_via_api,
    wait_for_state,
    worker,
)


@pytest.fixture(scope="session")
def chain_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("provenance-ca")


@pytest.fixture(autouse=True)
def dev_ca(settings, chain_dir):
    """The platform's development chain, generated lazily on first signing (as in make run)."""
    settings.PROVENANCE_DEV_CA_DIR = chain_dir
    settings.C2PA_SIGNING_KEY_FILE = settings.C2PA_CERT_CHAIN_FILE = (
        settings.C2PA_TRUST_ANCHORS_FILE
    ) = None
    return chain_dir


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def run_real_job(user):
    """Submit through the API and wait for the worker: a job with real outputs and events."""
    from tests.jobs import images

    response = submit_via_api(api_client(user), images.jpeg((120, 90)))
    assert response.status_code == 201, response.content
    job = wait_for_state(response.json()["id"], {"succeeded", "failed"})
    assert job.state == "succeeded", job.error
    return job


def succeeded_event(job):
    from audit.models import AuditEvent

    return AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded")


def clone_job(job, **changes):
    """Another EditJob row like `job` (same original), with its own job.succeeded event."""
    from audit.log import append_event
    from editplatform.jobs.audit_actions import JOB_SUCCEEDED
    from editplatform.jobs.models import EditJob

    clone = EditJob.objects.get(pk=job.pk)
    clone.pk = None
    clone._state.adding = True
    clone.idempotency_key = None
    for name, value in changes.items():
        setattr(clone, name, value)
    with transaction.atomic():
        clone.save()
        event = append_event(
            JOB_SUCCEEDED,
            subject=f"job:{clone.pk}",
            actor_name="worker",
            payload={"original_sha256": clone.original_id, "model_version": clone.model_version},
        )
    return clone, event
