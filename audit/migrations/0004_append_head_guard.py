"""`audit_expect_head`: lock the log head and refuse if it is not the one the caller expects.

An append on PostgreSQL sends its writes in one round trip, computed from the head as
this process last committed it (audit/log.py `_HeadCache`). The function runs first in
that round trip: it takes the head's row lock (as `SELECT ... FOR UPDATE` does) and
raises SQLSTATE SL409 when another writer moved the head (size, root or checkpoint
size differ), so the writes after it never run on a stale head; the appender then
falls back to locking and reading the head. SQLite has no such function (its appends
always read the head first).

The DDL is written out here, not imported, so this migration means the same thing
forever whatever later code looks like.
"""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE FUNCTION audit_expect_head(expected_size bigint, expected_root bytea,
                                      expected_checkpoint bigint) RETURNS void
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        head_size bigint;
        head_root bytea;
        head_checkpoint bigint;
    BEGIN
        SELECT size, root_hash, checkpoint_size INTO head_size, head_root, head_checkpoint
        FROM audit_loghead WHERE id = 1 FOR UPDATE;
        IF head_size IS DISTINCT FROM expected_size OR head_root IS DISTINCT FROM expected_root
           OR head_checkpoint IS DISTINCT FROM expected_checkpoint THEN
            RAISE EXCEPTION 'audit log head moved: expected size %, found %',
                expected_size, head_size USING ERRCODE = 'SL409';
        END IF;
    END
    $$
    """,
]


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRESQL:
            schema_editor.execute(statement, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION audit_expect_head(bigint, bytea, bigint)", params=None
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_event_subjects"),
    ]

    operations = [
        migrations.RunPython(create_function, reverse_code=drop_function, elidable=False),
    ]
