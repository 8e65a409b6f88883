"""Append-only against every statement, and a quarantine for rows planted beyond the head.

PostgreSQL: UPDATE, DELETE and TRUNCATE were already refused by row/statement
triggers, which also catch INSERT ... ON CONFLICT DO UPDATE and MERGE (they fire the
same row triggers). New here: DELETE is allowed for exactly the rows that are *not*
part of the log (events at seq >= the head's size, subtrees that end past it,
checkpoints past the head's checkpoint size); the trigger copies each into
`audit_quarantine` first. The append path uses this to stay available when someone
with superuser rights planted such a row (see audit/log.py `_execute_writes`).

SQLite: `INSERT OR REPLACE`, `REPLACE` and upserts delete the conflicting row without
firing delete triggers (unless recursive_triggers is on), so BEFORE INSERT triggers
refuse any insert that collides with a row of the log, and the head row may not be
inserted again. The same quarantine rules as on PostgreSQL.

The DDL is written out here, not imported, so this migration means the same thing
forever whatever later code looks like.
"""

from django.db import migrations

NODE_MASK = (1 << 56) - 1

POSTGRESQL = [
    """
    CREATE TABLE audit_quarantine (
        id bigserial PRIMARY KEY,
        table_name text NOT NULL,
        row_key bigint NOT NULL,
        row_data text NOT NULL,
        moved_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    f"""
    CREATE FUNCTION audit_guard_delete() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
        head_size bigint;
        head_checkpoint bigint;
        row_key bigint;
        beyond boolean;
    BEGIN
        SELECT size, checkpoint_size INTO head_size, head_checkpoint FROM audit_loghead WHERE id = 1;
        IF TG_TABLE_NAME = 'audit_event' THEN
            row_key := (to_jsonb(OLD)->>'seq')::bigint;
            beyond := head_size IS NULL OR row_key >= head_size;
        ELSIF TG_TABLE_NAME = 'audit_treenode' THEN
            row_key := (to_jsonb(OLD)->>'key')::bigint;
            beyond := head_size IS NULL OR ((row_key & {NODE_MASK}) + 1)::numeric
                * power(2::numeric, (row_key >> 56)::numeric) > head_size;
        ELSE
            row_key := (to_jsonb(OLD)->>'size')::bigint;
            beyond := head_checkpoint IS NULL OR row_key > head_checkpoint;
        END IF;
        IF NOT beyond THEN
            RAISE EXCEPTION 'audit log is append-only: DELETE on % refused', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        INSERT INTO audit_quarantine (table_name, row_key, row_data)
        VALUES (TG_TABLE_NAME, row_key, row_to_json(OLD)::text);
        RETURN OLD;
    END
    $$
    """,
    *[f"DROP TRIGGER {table}_no_delete ON {table}" for table in ("audit_event", "audit_treenode", "audit_checkpoint")],
    *[
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION audit_guard_delete()"""
        for table in ("audit_event", "audit_treenode", "audit_checkpoint")
    ],
    *[
        f"""CREATE TRIGGER audit_quarantine_no_{op.lower()} BEFORE {op} ON audit_quarantine
            FOR EACH {"STATEMENT" if op == "TRUNCATE" else "ROW"} EXECUTE FUNCTION audit_refuse()"""
        for op in ("UPDATE", "DELETE", "TRUNCATE")
    ],
]


def _sqlite_raise(message: str) -> str:
    return f"SELECT RAISE(ABORT, '{message}')"


_HEAD = "(SELECT size FROM audit_loghead WHERE id = 1)"
_HEAD_CHECKPOINT = "(SELECT checkpoint_size FROM audit_loghead WHERE id = 1)"


def _node_in_tree(ref: str) -> str:
    """SQLite: node `ref`.key lies inside the tree (shifts past 63 bits are guarded)."""
    return (f"(({ref}.key >> 56) < 62 AND ((({ref}.key & {NODE_MASK}) + 1) << ({ref}.key >> 56)) <= "
            f"coalesce({_HEAD}, -1))")


_QUARANTINE = "INSERT INTO audit_quarantine (table_name, row_key, row_data) VALUES ('{table}', {key}, {data});"

SQLITE = [
    """
    CREATE TABLE audit_quarantine (
        id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
        table_name text NOT NULL,
        row_key integer NOT NULL,
        row_data text NOT NULL,
        moved_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
    )
    """,
    *[f"DROP TRIGGER {table}_no_delete" for table in ("audit_event", "audit_treenode", "audit_checkpoint")],
    # audit_event: only rows at seq >= head may go, into the quarantine.
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
        WHEN OLD.seq < coalesce({_HEAD}, -1)
        BEGIN {_sqlite_raise("audit log is append-only: DELETE on audit_event refused")}; END""",
    f"""CREATE TRIGGER audit_event_quarantine BEFORE DELETE ON audit_event
        WHEN OLD.seq >= coalesce({_HEAD}, -1)
        BEGIN {_QUARANTINE.format(table="audit_event", key="OLD.seq", data=(
            "json_object('seq', OLD.seq, 'created_at', OLD.created_at, 'actor_id', OLD.actor_id, "
            "'actor_name', OLD.actor_name, 'action', OLD.action, 'subject', OLD.subject, "
            "'request_id', OLD.request_id, 'entry', OLD.entry, 'leaf_hash', hex(OLD.leaf_hash))"))} END""",
    f"""CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event
        BEGIN
            {_sqlite_raise("audit log is append-only: INSERT over a row of audit_event refused")}
                WHERE NEW.seq < coalesce({_HEAD}, -1) AND EXISTS (SELECT 1 FROM audit_event WHERE seq = NEW.seq);
            DELETE FROM audit_event WHERE seq = NEW.seq;
        END""",
    # audit_treenode: a subtree that ends past the head is not part of the tree.
    f"""CREATE TRIGGER audit_treenode_no_delete BEFORE DELETE ON audit_treenode
        WHEN {_node_in_tree("OLD")}
        BEGIN {_sqlite_raise("audit log is append-only: DELETE on audit_treenode refused")}; END""",
    f"""CREATE TRIGGER audit_treenode_quarantine BEFORE DELETE ON audit_treenode
        WHEN NOT {_node_in_tree("OLD")}
        BEGIN {_QUARANTINE.format(table="audit_treenode", key="OLD.key",
                                  data="json_object('key', OLD.key, 'hash', hex(OLD.hash))")} END""",
    f"""CREATE TRIGGER audit_treenode_no_replace BEFORE INSERT ON audit_treenode
        BEGIN
            {_sqlite_raise("audit log is append-only: INSERT over a row of audit_treenode refused")}
                WHERE EXISTS (SELECT 1 FROM audit_treenode AS old WHERE old.key = NEW.key AND {_node_in_tree("old")});
            DELETE FROM audit_treenode WHERE key = NEW.key;
        END""",
    # audit_checkpoint: past the head's checkpoint size is not a checkpoint of the log.
    f"""CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
        WHEN OLD.size <= coalesce({_HEAD_CHECKPOINT}, -1)
        BEGIN {_sqlite_raise("audit log is append-only: DELETE on audit_checkpoint refused")}; END""",
    f"""CREATE TRIGGER audit_checkpoint_quarantine BEFORE DELETE ON audit_checkpoint
        WHEN OLD.size > coalesce({_HEAD_CHECKPOINT}, -1)
        BEGIN {_QUARANTINE.format(table="audit_checkpoint", key="OLD.size", data=(
            "json_object('size', OLD.size, 'root_hash', hex(OLD.root_hash), 'note', OLD.note, "
            "'created_at', OLD.created_at)"))} END""",
    f"""CREATE TRIGGER audit_checkpoint_no_replace BEFORE INSERT ON audit_checkpoint
        BEGIN
            {_sqlite_raise("audit log is append-only: INSERT over a row of audit_checkpoint refused")}
                WHERE NEW.size <= coalesce({_HEAD_CHECKPOINT}, -1)
                  AND EXISTS (SELECT 1 FROM audit_checkpoint WHERE size = NEW.size);
            DELETE FROM audit_checkpoint WHERE size = NEW.size;
        END""",
    f"""CREATE TRIGGER audit_loghead_no_replace BEFORE INSERT ON audit_loghead
        WHEN EXISTS (SELECT 1 FROM audit_loghead)
        BEGIN {_sqlite_raise("audit log is append-only: INSERT over the audit_loghead row refused")}; END""",
    *[
        f"""CREATE TRIGGER audit_quarantine_no_{op.lower()} BEFORE {op} ON audit_quarantine
            BEGIN {_sqlite_raise(f"audit log is append-only: {op} on audit_quarantine refused")}; END"""
        for op in ("UPDATE", "DELETE")
    ],
    f"""CREATE TRIGGER audit_quarantine_no_replace BEFORE INSERT ON audit_quarantine
        WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_quarantine WHERE id = NEW.id)
        BEGIN {_sqlite_raise("audit log is append-only: INSERT over a row of audit_quarantine refused")}; END""",
]


def forwards(apps, schema_editor):
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

    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, reverse_code=None, elidable=False)]
