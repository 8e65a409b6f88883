"""Migrations apply from scratch on PostgreSQL and on SQLite, and none are missing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT
from tests.services import create_database


def manage(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_all_applied(**env):
    migrate = manage("migrate", "--noinput", **env)
    assert migrate.returncode == 0, migrate.stderr
    shown = manage("showmigrations", "--plan", **env)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("[X]") for line in lines), shown.stdout


def test_no_model_change_lacks_a_migration():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_apply_on_a_fresh_postgresql_database():
    url = os.environ.get("DATABASE_URL", "") or os.environ.get("STYLELEDGER_TEST_POSTGRES_URL", "")
    if not url.startswith("postgres"):
        url = os.environ.get("STYLELEDGER_TEST_POSTGRES_URL", "")
    assert url.startswith("postgres"), "run through make test: no PostgreSQL server URL"
    fresh = create_database(url, f"migr_{uuid.uuid4().hex[:10]}")
    assert_all_applied(DATABASE_URL=fresh)


@pytest.mark.embedded
def test_migrations_apply_on_a_fresh_sqlite_file(tmp_path):
    assert_all_applied(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3")
