"""The compose file is valid for docker-compose (v1 syntax)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

# What an operator puts in docker/.env (see docker/env.example).
OPERATOR_ENV = dict(os.environ, SECRET_KEY="s" * 50, POSTGRES_PASSWORD="pw", ALLOWED_HOSTS="edit.example.org")


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker-compose", "-f", "docker/compose.yml", *args], cwd=ROOT, env=env or OPERATOR_ENV,
                          capture_output=True, text=True, timeout=60)


def test_compose_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose not installed (make test installs Debian's docker-compose)", pytrace=False)
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets():
    env = {k: v for k, v in OPERATOR_ENV.items() if k not in ("SECRET_KEY", "POSTGRES_PASSWORD")}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "SECRET_KEY" in result.stderr


def test_compose_scales_workers_and_reserves_gpus():
    result = compose("config")
    assert result.returncode == 0, result.stderr
    import yaml

    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "web", "worker", "migrate"} <= set(services)
    worker = services["worker"]
    assert "container_name" not in worker  # --scale worker=N needs unnamed containers
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "-Q" in worker["command"] and "gpu" in worker["command"]
