"""Side table of the extra subjects an event names (an event may be about several things).

`append_event(..., subjects=[...])` writes the entry's `subjects` list (covered by the
leaf hash) and one row per extra subject here, in the same transaction, so the
reviewer's subject filter, timelines and export find the event under any of them with
an indexed lookup. Append-only like the other audit tables (triggers, no switch). No
unique key on purpose: a row planted out of turn can then never make an append fail
(the entry's `subjects` list is the authority; the table only indexes it).

Frozen: the DDL is written out here, not imported (see 0001_initial).
"""

from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE TABLE audit_event_subject (
        subject varchar(200) NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0)
    )
    """,
    """CREATE INDEX audit_extra_subject_subject_seq ON audit_event_subject (subject, seq)""",
    """CREATE INDEX audit_extra_subject_seq ON audit_event_subject (seq)""",
    """
    CREATE TRIGGER audit_event_subject_no_update BEFORE UPDATE ON audit_event_subject
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_event_subject_no_delete BEFORE DELETE ON audit_event_subject
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_event_subject_no_truncate BEFORE TRUNCATE ON audit_event_subject
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()
    """,
]

SQLITE = [
    """
    CREATE TABLE audit_event_subject (
        subject varchar(200) NOT NULL,
        seq integer NOT NULL CHECK (seq >= 0)
    )
    """,
    """CREATE INDEX audit_extra_subject_subject_seq ON audit_event_subject (subject, seq)""",
    """CREATE INDEX audit_extra_subject_seq ON audit_event_subject (seq)""",
    """
    CREATE TRIGGER audit_event_subject_no_update BEFORE UPDATE ON audit_event_subject
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on audit_event_subject refused'); END
    """,
    """
    CREATE TRIGGER audit_event_subject_no_delete BEFORE DELETE ON audit_event_subject
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on audit_event_subject refused'); END
    """,
]


def create_table(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRESQL
    elif vendor == "sqlite":
        statements = SQLITE
    else:
        raise NotImplementedError(f"the audit log supports PostgreSQL and SQLite, not {vendor}")
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_guard_every_statement"),
    ]

    operations = [
        migrations.RunPython(create_table, reverse_code=None, elidable=False),
        migrations.CreateModel(
            name="AuditEventSubject",
            fields=[
                ("pk", models.CompositePrimaryKey("subject", "seq", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("subject", models.CharField(max_length=200)),
                ("seq", models.BigIntegerField()),
            ],
            options={"db_table": "audit_event_subject", "managed": False},
        ),
    ]
