"""Start-up refuses a missing or malformed environment variable, naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, manage_check


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DATABASE_URL", "not-a-url", "DATABASE_URL"),
        ("DATABASE_URL", "mysql://u@h/db", "unsupported"),
        ("DATABASE_URL", "postgres://u@127.0.0.1:5432/", "names no database"),
        ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL"),
        ("DEBUG", "perhaps", "DEBUG"),
        ("STYLELEDGER_ENV", "staging", "STYLELEDGER_ENV"),
    ],
)
def test_malformed_variable_stops_startup_naming_it(name, value, fragment):
    result = manage_check(**{name: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert name in result.stderr and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_production_requires_a_secret_key():
    result = manage_check(STYLELEDGER_ENV="production", SECRET_KEY="")
    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr and "required" in result.stderr


def test_production_turns_on_secure_cookies_and_hsts():
    env = os.environ.copy()
    env.update(STYLELEDGER_ENV="production", SECRET_KEY="x" * 50, ALLOWED_HOSTS="edit.example.org")
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.DEBUG, s.ALLOWED_HOSTS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[true, true, 31536000, false, ["edit.example.org"]]'


def test_development_secret_key_is_generated_once(tmp_path):
    env = os.environ.copy()
    env.update(
        STYLELEDGER_VAR_DIR=str(tmp_path),
        SECRET_KEY="",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)"
    )
    first = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    second = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
