"""/healthz and /readyz: liveness, and readiness that names what is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.services import free_port

READYZ_IN_SUBPROCESS = (
    "import django, json; django.setup(); from django.test import Client; r = "
    "Client(HTTP_HOST='127.0.0.1').get('/readyz'); print(r.status_code); print(r.content.decode())"
)


def readyz_with(**overrides: str) -> tuple[int, dict]:
    env = os.environ.copy()
    env.update(overrides)
    result = subprocess.run(
        [sys.executable, "-c", READYZ_IN_SUBPROCESS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split("\n", 1)
    return int(status), json.loads(body)


def test_healthz_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_dependency_ok(client, model_bundle):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"] == {
        "database": "ok",
        "broker": "ok",
        "storage": "ok",
        "model_bundle": "ok",
    }


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(model_bundle):
    status, body = readyz_with(DATABASE_URL=f"postgres://nobody@127.0.0.1:{free_port()}/nothing")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] != "ok" and "OperationalError" in body["checks"]["database"]
    assert body["checks"]["storage"] == "ok"


def test_readyz_is_503_naming_the_broker_when_it_is_unreachable(model_bundle):
    status, body = readyz_with(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert status == 503
    assert body["checks"]["broker"] != "ok"
    assert "Error" in body["checks"]["broker"]


def test_readyz_is_503_when_the_model_bundle_is_missing(tmp_path):
    status, body = readyz_with(MODEL_BUNDLE=str(tmp_path / "nowhere"))
    assert status == 503
    assert "no model bundle" in body["checks"]["model_bundle"]


def test_request_id_is_echoed_and_generated(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc12345-trace")
    assert response["X-Request-ID"] == "abc12345-trace"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]
    assert generated != "bad id!" and len(generated) == 32
