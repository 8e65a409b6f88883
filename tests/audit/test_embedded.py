"""The embedded defaults (SQLite): the same append-only guarantees and verification."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit import log as audit_log
from audit.models import AuditEvent
from audit.verify import verify_log
from tests.audit import action_names as actions

pytestmark = pytest.mark.embedded


@pytest.mark.django_db
def test_sqlite_appends_refuses_changes_and_verifies(settings, tmp_path):
    assert connection.vendor == "sqlite"
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "cp"
    start = audit_log.read_head().size
    events = [
        audit_log.append_event(actions.JOB_SUBMITTED, subject="j", payload={"i": i, "x": 0.25})
        for i in range(25)
    ]
    assert [e.seq for e in events] == list(range(start, start + 25))
    audit_log.make_checkpoint()
    for statement in (
        "UPDATE audit_event SET action = 'job.failed'",
        "DELETE FROM audit_event",
        "UPDATE audit_checkpoint SET note = ''",
        "DELETE FROM audit_treenode",
        "UPDATE audit_loghead SET size = 0",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    result = verify_log()
    assert result.ok, result.problems
    assert result.size == start + 25 and AuditEvent.objects.count() == start + 25
    # An attacker who drops the trigger to edit a row is caught by verification.
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER audit_event_no_update")
        cursor.execute("UPDATE audit_event SET subject = 'k' WHERE seq = %s", [start + 3])
    bad = verify_log()
    assert not bad.ok and bad.first_bad_index == start + 3
