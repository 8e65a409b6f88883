"""Fixtures for the audit tests: a fresh log per test, tampering as a superuser."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from audit import tlog


@contextlib.contextmanager
def triggers_disabled(connection):
    """What an attacker with superuser access can do: skip the append-only triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def wipe_log(connection) -> None:
    with triggers_disabled(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_event")
        cursor.execute("DELETE FROM audit_event_subject")
        cursor.execute("DELETE FROM audit_treenode")
        cursor.execute("DELETE FROM audit_checkpoint")
        cursor.execute("DELETE FROM audit_quarantine")
        cursor.execute(
            "UPDATE audit_loghead SET size = 0, frontier = %s, root_hash = %s, last_time = NULL, "
            "checkpoint_size = 0, checkpoint_at = NULL",
            [b"", tlog.EMPTY_ROOT],
        )


@pytest.fixture
def fresh_log(settings, tmp_path, django_db_blocker):
    """An empty log (the audit tables survive Django's flushes by design) and export dir."""
    from django.db import connection

    session_export = Path(settings.AUDIT_CHECKPOINT_DIR) / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_EVERY = 1000
    settings.AUDIT_CHECKPOINT_SECONDS = 3600
    wipe_log(connection)
    session_export.unlink(missing_ok=True)
    yield tmp_path / "checkpoints"
    wipe_log(connection)  # leave no planted or quarantined rows for later tests
    # The wipe is a rollback of the session's log: its exported checkpoints go with it,
    # or the rollback guard (audit/rollback.py) would rightly refuse every later append.
    session_export.unlink(missing_ok=True)
