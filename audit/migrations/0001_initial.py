"""The audit tables, their indexes and the triggers that make them append-only.

Frozen: the DDL is written out here, not imported, so this migration creates the
same tables whatever later code says (tests/core/test_migrations.py checks that no
migration imports project code). Change the schema with a new migration.

PostgreSQL: row triggers refuse UPDATE and DELETE, statement triggers refuse
TRUNCATE, on every audit table. The one UPDATE allowed on `audit_event` is the one
Django issues when a user is deleted (actor_id -> NULL, nothing else changed): the
username copy and the hashed entry keep who it was. The head row may only grow.
These are plain PL/pgSQL triggers with no switch to skip them (unlike
django-pgtrigger's `Protect`, which any session can skip through the
`pgtrigger.ignore` variable). Only a superuser or the table owner (ALTER TABLE ...
DISABLE TRIGGER, session_replication_role) can get past them, which is what the
Merkle tree and the exported signed checkpoints are for. See docs/audit.md.

SQLite (embedded mode): equivalent BEFORE UPDATE / BEFORE DELETE triggers (SQLite
has no TRUNCATE; its truncate optimisation is disabled when a delete trigger exists).

Irreversible on purpose: migrating the audit app back to zero would drop the log.
"""

from django.db import migrations, models

# The same SQL on both databases: the reviewer's filters are (column, seq) keyset scans.
EVENT_INDEXES = [
    """CREATE INDEX audit_event_action_seq ON audit_event (action, seq)""",
    """CREATE INDEX audit_event_actor_seq ON audit_event (actor_name, seq)""",
    """CREATE INDEX audit_event_subject_seq ON audit_event (subject, seq)""",
    """CREATE INDEX audit_event_request_seq ON audit_event (request_id, seq)""",
    """CREATE INDEX audit_event_created_at ON audit_event (created_at)""",
    """CREATE INDEX audit_event_actor_id ON audit_event (actor_id) WHERE actor_id IS NOT NULL""",
]

POSTGRESQL = [
    """
    CREATE TABLE audit_event (
        seq bigint PRIMARY KEY CHECK (seq >= 0),
        created_at timestamptz NOT NULL,
        actor_id integer NULL,
        actor_name varchar(150) NOT NULL DEFAULT '',
        action varchar(64) NOT NULL,
        subject varchar(200) NOT NULL DEFAULT '',
        request_id varchar(64) NOT NULL DEFAULT '',
        entry text NOT NULL,
        leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32)
    )
    """,
    *EVENT_INDEXES,
    """
    CREATE TABLE audit_treenode (
        key bigint PRIMARY KEY,
        hash bytea NOT NULL CHECK (octet_length(hash) = 32)
    )
    """,
    """
    CREATE TABLE audit_checkpoint (
        size bigint PRIMARY KEY CHECK (size >= 0),
        root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
        note text NOT NULL,
        created_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE audit_loghead (
        id smallint PRIMARY KEY CHECK (id = 1),
        size bigint NOT NULL CHECK (size >= 0),
        frontier bytea NOT NULL,
        root_hash bytea NOT NULL,
        last_time timestamptz NULL,
        checkpoint_size bigint NOT NULL DEFAULT 0,
        checkpoint_at timestamptz NULL
    )
    """,
    """
    INSERT INTO audit_loghead (id, size, frontier, root_hash, checkpoint_size)
    VALUES (1, 0, ''::bytea, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'), 0)
    """,
    """
    CREATE FUNCTION audit_try_jsonb(value text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN value::jsonb;  -- used by `audit verify`: a corrupt entry is reported, not fatal
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE FUNCTION audit_event_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Django's on_delete=SET_NULL when a user is deleted: actor_id -> NULL only.
        IF NEW.actor_id IS NULL
           AND ROW(NEW.seq, NEW.created_at, NEW.actor_name, NEW.action, NEW.subject, NEW.request_id, NEW.entry, NEW.leaf_hash)
               IS NOT DISTINCT FROM ROW(OLD.seq, OLD.created_at, OLD.actor_name, OLD.action, OLD.subject, OLD.request_id, OLD.entry, OLD.leaf_hash) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit log is append-only: UPDATE on audit_event refused'
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE FUNCTION audit_head_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.id <> OLD.id OR NEW.size < OLD.size OR NEW.checkpoint_size < OLD.checkpoint_size THEN
            RAISE EXCEPTION 'audit log head may only grow (size % -> %)', OLD.size, NEW.size
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_guard_update()
    """,
    """
    CREATE TRIGGER audit_treenode_no_update BEFORE UPDATE ON audit_treenode
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_loghead_only_grows BEFORE UPDATE ON audit_loghead
    FOR EACH ROW EXECUTE FUNCTION audit_head_guard_update()
    """,
    """
    CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_treenode_no_delete BEFORE DELETE ON audit_treenode
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_loghead_no_delete BEFORE DELETE ON audit_loghead
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_treenode_no_truncate BEFORE TRUNCATE ON audit_treenode
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()
    """,
    """
    CREATE TRIGGER audit_loghead_no_truncate BEFORE TRUNCATE ON audit_loghead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()
    """,
]

SQLITE = [
    """
    CREATE TABLE audit_event (
        seq integer NOT NULL PRIMARY KEY CHECK (seq >= 0),
        created_at datetime NOT NULL,
        actor_id integer NULL,
        actor_name varchar(150) NOT NULL DEFAULT '',
        action varchar(64) NOT NULL,
        subject varchar(200) NOT NULL DEFAULT '',
        request_id varchar(64) NOT NULL DEFAULT '',
        entry text NOT NULL,
        leaf_hash blob NOT NULL CHECK (length(leaf_hash) = 32)
    )
    """,
    *EVENT_INDEXES,
    """CREATE TABLE audit_treenode (key integer NOT NULL PRIMARY KEY, hash blob NOT NULL CHECK (length(hash) = 32))""",
    """
    CREATE TABLE audit_checkpoint (
        size integer NOT NULL PRIMARY KEY CHECK (size >= 0),
        root_hash blob NOT NULL CHECK (length(root_hash) = 32),
        note text NOT NULL,
        created_at datetime NOT NULL
    )
    """,
    """
    CREATE TABLE audit_loghead (
        id smallint NOT NULL PRIMARY KEY CHECK (id = 1),
        size integer NOT NULL CHECK (size >= 0),
        frontier blob NOT NULL,
        root_hash blob NOT NULL,
        last_time datetime NULL,
        checkpoint_size integer NOT NULL DEFAULT 0,
        checkpoint_at datetime NULL
    )
    """,
    """
    INSERT INTO audit_loghead (id, size, frontier, root_hash, checkpoint_size)
    VALUES (1, 0, X'', X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 0)
    """,
    """
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    WHEN NOT (NEW.actor_id IS NULL AND NEW.seq IS OLD.seq AND NEW.created_at IS OLD.created_at
              AND NEW.actor_name IS OLD.actor_name AND NEW.action IS OLD.action
              AND NEW.subject IS OLD.subject AND NEW.request_id IS OLD.request_id
              AND NEW.entry IS OLD.entry AND NEW.leaf_hash IS OLD.leaf_hash)
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on audit_event refused'); END
    """,
    """
    CREATE TRIGGER audit_treenode_no_update BEFORE UPDATE ON audit_treenode
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on audit_treenode refused'); END
    """,
    """
    CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on audit_checkpoint refused'); END
    """,
    """
    CREATE TRIGGER audit_loghead_only_grows BEFORE UPDATE ON audit_loghead
    WHEN NEW.id <> OLD.id OR NEW.size < OLD.size OR NEW.checkpoint_size < OLD.checkpoint_size
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: shrinking UPDATE on audit_loghead refused'); END
    """,
    """
    CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on audit_event refused'); END
    """,
    """
    CREATE TRIGGER audit_treenode_no_delete BEFORE DELETE ON audit_treenode
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on audit_treenode refused'); END
    """,
    """
    CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on audit_checkpoint refused'); END
    """,
    """
    CREATE TRIGGER audit_loghead_no_delete BEFORE DELETE ON audit_loghead
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on audit_loghead refused'); END
    """,
]


def create_tables(apps, schema_editor):
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

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('seq', models.BigIntegerField(help_text='Leaf index in the Merkle tree.', primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField()),
                ('actor_name', models.CharField(blank=True, max_length=150)),
                ('action', models.CharField(max_length=64)),
                ('subject', models.CharField(blank=True, max_length=200)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('entry', models.TextField(help_text='Canonical JSON committed to by the leaf hash.')),
                ('leaf_hash', models.BinaryField()),
            ],
            options={
                'verbose_name': 'audit event',
                'db_table': 'audit_event',
                'ordering': ['-seq'],
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('size', models.BigIntegerField(primary_key=True, serialize=False)),
                ('root_hash', models.BinaryField()),
                ('note', models.TextField(help_text='The signed note (C2SP tlog-checkpoint).')),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'audit_checkpoint',
                'ordering': ['-size'],
                'get_latest_by': 'size',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='LogHead',
            fields=[
                ('id', models.SmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('size', models.BigIntegerField(default=0)),
                ('frontier', models.BinaryField(default=b'')),
                ('root_hash', models.BinaryField()),
                ('last_time', models.DateTimeField(null=True)),
                ('checkpoint_size', models.BigIntegerField(default=0)),
                ('checkpoint_at', models.DateTimeField(null=True)),
            ],
            options={
                'db_table': 'audit_loghead',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='TreeNode',
            fields=[
                ('key', models.BigIntegerField(primary_key=True, serialize=False)),
                ('hash', models.BinaryField()),
            ],
            options={
                'db_table': 'audit_treenode',
                'managed': False,
            },
        ),
        migrations.RunPython(create_tables, reverse_code=None, elidable=False),
    ]
