"""The compose file is valid for docker-compose (v1 syntax) and its example env file.

The services' commands themselves are run in tests/deploy.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

# What an operator puts in docker/.env (see docker/env.example).
OPERATOR_ENV = dict(
    os.environ,
    SECRET_KEY="s" * 50,
    POSTGRES_PASSWORD="pw",
    APP_DB_PASSWORD="apw",
    METRICS_TOKEN="token",
    ALLOWED_HOSTS="edit.example.org",
)
EXAMPLE = ROOT / "docker" / "env.example"


def compose(
    *args: str, env: dict[str, str] | None = None, env_file=None
) -> subprocess.CompletedProcess:
    extra = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        ["docker-compose", *extra, "-f", "docker/compose.yml", *args],
        cwd=ROOT,
        env=env or OPERATOR_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose not installed (make test installs Debian's docker-compose)",
            pytrace=False,
        )
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_validates_with_the_example_env_file():
    clean = {k: v for k, v in os.environ.items() if k not in OPERATOR_ENV or k in ("PATH", "HOME")}
    for profile in ([], ["--profile", "s3"]):
        result = compose(*profile, "config", "-q", env=clean, env_file=EXAMPLE)
        assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets():
    for missing in ("SECRET_KEY", "POSTGRES_PASSWORD", "APP_DB_PASSWORD", "METRICS_TOKEN"):
        env = {k: v for k, v in OPERATOR_ENV.items() if k != missing}
        result = compose("config", "-q", env=env)
        assert result.returncode != 0
        assert missing in result.stderr


def test_the_app_refuses_the_example_placeholders_in_production(tmp_path):
    """Start-up with docker/env.example's values as they stand stops and says why."""
    clean = {k: v for k, v in os.environ.items() if k not in OPERATOR_ENV or k in ("PATH", "HOME")}
    config = yaml.safe_load(compose("config", env=clean, env_file=EXAMPLE).stdout)
    web_env = {k: str(v) for k, v in config["services"]["web"]["environment"].items()}
    base = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "STYLELEDGER_VAR_DIR": str(tmp_path),
    }

    def start(env):
        return subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env=base | env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = start(web_env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "placeholder from docker/env.example" in result.stderr
    # Replace the secrets one by one: each remaining placeholder is named in turn.
    fixed = dict(web_env, SECRET_KEY="x" * 50)
    result = start(fixed)
    assert "DATABASE_URL" in result.stderr and "placeholder" in result.stderr
    fixed["DATABASE_URL"] = fixed["DATABASE_URL"].replace("change-me-too", "real-password")
    result = start(fixed)
    assert "METRICS_TOKEN" in result.stderr and "placeholder" in result.stderr


def test_compose_scales_workers_and_reserves_gpus():
    result = compose("config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {
        "postgres",
        "redis",
        "init",
        "migrate",
        "web",
        "proxy",
        "worker",
        "worker-cpu",
        "scheduler",
    } <= set(services)
    worker = services["worker"]
    assert "container_name" not in worker  # --scale worker=N needs unnamed containers
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert (
        "-Q" in worker["command"] and worker["command"][worker["command"].index("-Q") + 1] == "gpu"
    )
    cpu = services["worker-cpu"]["command"]
    assert cpu[cpu.index("-Q") + 1] == "default"
    # Only the proxy is published; web talks plain HTTP inside the network.
    assert "ports" not in services["web"] and services["proxy"]["ports"]
    assert services["web"]["environment"]["BEHIND_TLS_PROXY"] == "true"
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://styleledger_app:")


def test_the_app_trusts_the_proxy_and_only_the_proxy_for_the_client_address():
    """nginx writes X-Forwarded-For; without the proxy in TRUSTED_PROXY_CIDRS every client
    would look like the proxy (one shared lockout, allow-lists useless)."""
    config = yaml.safe_load(compose("config").stdout)
    subnet = ipaddress.ip_network(config["networks"]["default"]["ipam"]["config"][0]["subnet"])
    proxy = ipaddress.ip_address(config["services"]["proxy"]["networks"]["default"]["ipv4_address"])
    assert proxy in subnet
    for name in ("web", "worker", "worker-cpu", "migrate"):
        cidrs = config["services"][name]["environment"]["TRUSTED_PROXY_CIDRS"].split(",")
        trusted = [ipaddress.ip_network(c.strip()) for c in cidrs]
        assert any(proxy in net for net in trusted), name
        # The gateway (clients NATed through a published port) is not vouched for.
        assert not any(next(subnet.hosts()) in net for net in trusted), name


def test_migrate_checkpoints_into_the_same_storage_as_web_and_workers():
    services = yaml.safe_load(compose("config").stdout)["services"]

    def storage_mount(name):
        for spec in services[name]["volumes"]:
            if isinstance(spec, dict) and spec.get("source") == "storage":
                return spec["target"]
            if isinstance(spec, str) and spec.split(":")[0] == "storage":
                return spec.split(":")[1]
        return None

    targets = {name: storage_mount(name) for name in ("migrate", "web", "worker", "worker-cpu")}
    assert len(set(targets.values())) == 1 and None not in targets.values(), targets
    checkpoints = services["migrate"]["environment"]["AUDIT_CHECKPOINT_DIR"]
    assert checkpoints.startswith(targets["migrate"] + "/"), (checkpoints, targets)
