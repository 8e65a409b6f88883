"""Fixtures of the edit-job tests: users per role, API clients, isolated queues."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from editplatform.accounts.roles import APPROVER, INTEGRATION, REQUESTER, REVIEWER, ensure_groups

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Basic auth checks the password on every request; PBKDF2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db):
    def _make(username: str, *roles) -> object:
        groups = ensure_groups()
        user = get_user_model().objects.create_user(username=username, password=PASSWORD)
        for role in roles:
            user.groups.add(groups[role.name])
        return user

    return _make


@pytest.fixture
def requester(make_user):
    return make_user("alice", REQUESTER)


@pytest.fixture
def other_requester(make_user):
    return make_user("bob", REQUESTER)


@pytest.fixture
def reviewer(make_user):
    return make_user("rita", REVIEWER)


@pytest.fixture
def approver(make_user):
    return make_user("arno", APPROVER)


@pytest.fixture
def integration(make_user):
    return make_user("svc-crm", INTEGRATION)


def api_client(user=None):
    """Session (people, with 2FA where their role needs it) or API key (integrations)."""
    from tests.conftest import api_client_for

    return api_client_for(user)


@pytest.fixture
def client_for():
    return api_client


@pytest.fixture
def isolated_storage(settings, tmp_path):
    """A fresh storage root, so a test can assert exactly which files were written."""
    root = tmp_path / "storage"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def bundle(model_bundle):
    """The platform's bundle, verified (tests compare versions and catalogs with it)."""
    from inversion.bundle import load_bundle

    return load_bundle(model_bundle)


@pytest.fixture
def worker(model_bundle, celery_worker):
    """The session worker, started after the bundle exists (it preloads the model)."""
    return celery_worker


def submit_via_api(
    client,
    image_bytes: bytes,
    *,
    edits=None,
    purpose="Campaign photo retouch for test",
    consent="true",
    name="photo.png",
    headers=None,
    extra=None,
):
    """POST a job; `edits` defaults to the catalog's first plain edit at 3/4 of its range;
    ``extra`` adds form fields (``quality``, ``face_index``)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests import catalog

    edits = catalog.request_json() if edits is None else edits

    data = {
        "image": SimpleUploadedFile(name, image_bytes, content_type="application/octet-stream"),
        "edits": edits,
        "purpose": purpose,
        "consent": consent,
        **(extra or {}),
    }
    return client.post("/api/v1/jobs", data, format="multipart", **(headers or {}))


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_for_state(job_id, states, timeout: float = 90.0):
    from editplatform.jobs.models import EditJob

    states = {states} if isinstance(states, str) else set(states)

    def check():
        job = EditJob.objects.get(pk=job_id)
        return job if job.state in states else None

    return wait_for(check, timeout, what=f"job {job_id} to reach {sorted(states)}")


def audit_count(job_id, action: str) -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.filter(subject=f"job:{job_id}", action=action).count()


# --- queue isolation on the shared Redis -----------------------------------------------


@contextlib.contextmanager
def gpu_queue_to_ourselves():
    """Stop every already running worker (the session worker) from taking gpu jobs.

    Tests that kill or race their own workers need the queue for themselves; the
    session worker gets its consumer back afterwards. Uses Celery's remote control.
    """
    from editplatform.celery import app

    replies = app.control.inspect(timeout=2.0).active_queues() or {}
    others = [name for name, queues in replies.items() if any(q["name"] == "gpu" for q in queues)]
    if others:
        app.control.cancel_consumer("gpu", destination=others, reply=True, timeout=5.0)
    try:
        yield
    finally:
        if others:
            app.control.add_consumer("gpu", destination=others, reply=True, timeout=5.0)


@contextlib.contextmanager
def celery_publishing_to(url: str):
    """Point this (test) process's Celery app at another broker for a while."""
    from editplatform.celery import app

    old = app.conf.broker_write_url
    app.conf.broker_write_url = url  # what connection_for_write() (publishing) uses
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_write_url = old
        app._pool = None
        app.amqp._producer_pool = None


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def worker_env_with(**extra):
    from tests.conftest import worker_env

    env = worker_env()
    env.update({k: str(v) for k, v in extra.items()})
    return env
