"""DDL for the audit tables and the triggers that make them append-only.

PostgreSQL: row triggers refuse UPDATE and DELETE, statement triggers refuse
TRUNCATE, on every audit table. The one UPDATE allowed on `audit_event` is the one
Django issues when a user is deleted (actor_id -> NULL, nothing else changed): the
username copy and the hashed entry keep who it was. The head row may only grow.

These are plain PL/pgSQL triggers rather than django-pgtrigger's `Protect`: pgtrigger
lets any session skip its triggers by setting the `pgtrigger.ignore` variable, which
the application's own database role can do; these have no such switch. Only a
superuser or the table owner (ALTER TABLE ... DISABLE TRIGGER, session_replication_role)
can get past them, which is what the Merkle tree and the exported signed checkpoints
are for. See docs/audit.md for revoking the privileges as well.

SQLite (embedded mode): equivalent BEFORE UPDATE / BEFORE DELETE triggers (SQLite
has no TRUNCATE; its truncate optimisation is disabled when a delete trigger exists).

This is the schema of migration 0001 only. Migration 0002 (its DDL written out in the
migration) adds `audit_quarantine`, lets exactly the rows beyond the head be deleted
(into the quarantine), and on SQLite refuses INSERT OR REPLACE / REPLACE / upserts
over rows of the log; a fresh install runs both migrations.
"""

from __future__ import annotations

TABLES = ("audit_event", "audit_treenode", "audit_checkpoint", "audit_loghead")
_EVENT_COLUMNS = ("seq", "created_at", "actor_name", "action", "subject", "request_id", "entry", "leaf_hash")

# The same SQL on both databases: the reviewer's filters are (column, seq) keyset scans.
_EVENT_INDEXES = (
    "CREATE INDEX audit_event_action_seq ON audit_event (action, seq)",
    "CREATE INDEX audit_event_actor_seq ON audit_event (actor_name, seq)",
    "CREATE INDEX audit_event_subject_seq ON audit_event (subject, seq)",
    "CREATE INDEX audit_event_request_seq ON audit_event (request_id, seq)",
    "CREATE INDEX audit_event_created_at ON audit_event (created_at)",
    "CREATE INDEX audit_event_actor_id ON audit_event (actor_id) WHERE actor_id IS NOT NULL",
)

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
    *_EVENT_INDEXES,
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
    r"""
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
    f"""
    CREATE FUNCTION audit_event_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Django's on_delete=SET_NULL when a user is deleted: actor_id -> NULL only.
        IF NEW.actor_id IS NULL
           AND ROW({", ".join("NEW." + c for c in _EVENT_COLUMNS)})
               IS NOT DISTINCT FROM ROW({", ".join("OLD." + c for c in _EVENT_COLUMNS)}) THEN
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
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_guard_update()""",
    """CREATE TRIGGER audit_treenode_no_update BEFORE UPDATE ON audit_treenode
       FOR EACH ROW EXECUTE FUNCTION audit_refuse()""",
    """CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
       FOR EACH ROW EXECUTE FUNCTION audit_refuse()""",
    """CREATE TRIGGER audit_loghead_only_grows BEFORE UPDATE ON audit_loghead
       FOR EACH ROW EXECUTE FUNCTION audit_head_guard_update()""",
    *[
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION audit_refuse()"""
        for table in TABLES
    ],
    *[
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()"""
        for table in TABLES
    ],
]

_SQLITE_RAISE = "SELECT RAISE(ABORT, 'audit log is append-only: {op} on {table} refused');"

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
    *_EVENT_INDEXES,
    "CREATE TABLE audit_treenode (key integer NOT NULL PRIMARY KEY, hash blob NOT NULL CHECK (length(hash) = 32))",
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
    f"""
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    WHEN NOT (NEW.actor_id IS NULL AND {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in _EVENT_COLUMNS)})
    BEGIN {_SQLITE_RAISE.format(op="UPDATE", table="audit_event")} END
    """,
    *[
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN {_SQLITE_RAISE.format(op="UPDATE", table=table)} END"""
        for table in ("audit_treenode", "audit_checkpoint")
    ],
    f"""
    CREATE TRIGGER audit_loghead_only_grows BEFORE UPDATE ON audit_loghead
    WHEN NEW.id <> OLD.id OR NEW.size < OLD.size OR NEW.checkpoint_size < OLD.checkpoint_size
    BEGIN {_SQLITE_RAISE.format(op="shrinking UPDATE", table="audit_loghead")} END
    """,
    *[
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN {_SQLITE_RAISE.format(op="DELETE", table=table)} END"""
        for table in TABLES
    ],
]


def create(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRESQL
    elif vendor == "sqlite":
        statements = SQLITE
    else:
        raise NotImplementedError(f"the audit log supports PostgreSQL and SQLite, not {vendor}")
    for statement in statements:
        schema_editor.execute(statement, params=None)
