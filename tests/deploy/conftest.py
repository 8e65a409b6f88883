"""The compose deployment brought up once per module from docker/compose.yml."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT
from tests.deploy.stack import Stack, compose_config, wait_port
from tests.services import create_database, redis_server

APP_SERVICES = ("web", "worker", "worker-cpu", "scheduler", "proxy")


def operator_env(database: str) -> dict[str, str]:
    """What an operator writes into docker/.env, for a deployment on the S3 profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "STYLELEDGER_"))}
    env.update(
        SECRET_KEY="k" * 50,
        POSTGRES_PASSWORD="owner-pw",
        APP_DB_PASSWORD="app-pw",
        METRICS_TOKEN="scrape-token",
        ALLOWED_HOSTS="edit.example.org",
        SERVER_NAME="edit.example.org",
        POSTGRES_DB=database,
        STORAGE_BACKEND="s3",
        S3_BUCKET="styleledger-artifacts",
        S3_ACCESS_KEY="styleledger",
        S3_SECRET_KEY="s3-secret-for-tests",
        AUDIT_LOG_ORIGIN="edit.example.org/audit",
        # Short periods so the beat's sweeper and checkpoint runs happen within the test.
        JOB_SWEEP_INTERVAL_SECONDS="2",
        AUDIT_CHECKPOINT_SECONDS="3",
    )
    return env


def fresh_stack(root: Path, redis_url: str) -> Stack:
    admin_url = os.environ["DATABASE_URL"]
    database = f"compose_{uuid.uuid4().hex[:10]}"
    create_database(admin_url.rsplit("/", 1)[0] + "/postgres", database)
    config = compose_config(operator_env(database), "s3")
    pg, rd = urlsplit(admin_url), urlsplit(redis_url)
    stack = Stack(config, root, (pg.hostname, pg.port), (rd.hostname, rd.port))
    stack.database = database
    return stack


@pytest.fixture(scope="module")
def deployment():
    """init -> migrate -> web, GPU worker, CPU worker, beat, TLS proxy, on S3 storage."""
    root = Path(tempfile.mkdtemp(prefix="styleledger-compose-"))
    with redis_server() as redis_url:
        stack = fresh_stack(root, redis_url)
        try:
            s3 = stack.start("s3")
            wait_port(stack.port("s3", 8333), 90, "SeaweedFS S3", s3.proc)
            ok, out = stack.healthcheck("s3")
            assert ok, f"s3 healthcheck: {out}\n{s3.log()[-3000:]}"
            init = stack.run_once("init", timeout=240)
            assert init.returncode == 0, init.stdout + init.stderr
            stack.init_output = init.stdout
            migrate = stack.run_once("migrate", timeout=420)
            assert migrate.returncode == 0, migrate.stdout + migrate.stderr
            stack.migrate_output = migrate.stdout
            match = re.search(r"first admin: (\S+) password: (\S+)", migrate.stdout)
            assert match, migrate.stdout
            stack.admin = (match[1], match[2])
            for name in APP_SERVICES:
                stack.start(name)
            yield stack
        finally:
            stack.stop_all()
            if (root / "logs").exists():
                shutil.copytree(root / "logs", ROOT / "test-output" / "compose", dirs_exist_ok=True)
            shutil.rmtree(root, ignore_errors=True)
