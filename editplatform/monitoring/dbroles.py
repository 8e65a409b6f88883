"""The application's database role: everything it needs, nothing it must not have.

The deployment migrates as the owner and runs web, workers and beat as
APP_DATABASE_ROLE, which owns nothing (an owner could disable the audit triggers)
and lacks UPDATE/TRUNCATE on the audit tables; its DELETE only reaches the guard
triggers, which refuse every row of the log (docs/audit.md). Statements
are idempotent: `deploy_init` may run on every `docker compose up`.
"""

from __future__ import annotations

from psycopg import sql

AUDIT_TABLES = (
    "audit_event",
    "audit_treenode",
    "audit_checkpoint",
    "audit_loghead",
    "audit_event_subject",
)


def ensure_role(cursor, role: str, password: str) -> bool:
    """Create the login role (or reset its password); True when it was created."""
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    exists = cursor.fetchone() is not None
    verb = "ALTER" if exists else "CREATE"
    statement = sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
    cursor.execute(
        statement.format(sql.Identifier(role), sql.Literal(password)).as_string(cursor.connection)
    )
    return not exists


def grant_app_privileges(cursor, role: str, database: str) -> None:
    """Data access on every table, then the audit tables narrowed to append-only."""
    ident = sql.Identifier(role)
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in AUDIT_TABLES)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), ident),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            ident
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
        # Schema changes belong to the owner; the app only reads what migrate applied.
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(ident),
        # docs/audit.md, "Revoking UPDATE/DELETE/TRUNCATE from the application's role".
        sql.SQL("REVOKE ALL ON {} FROM {}").format(tables, ident),
        sql.SQL(
            "GRANT SELECT, INSERT ON audit_event, audit_treenode, audit_checkpoint,"
            " audit_event_subject TO {}"
        ).format(ident),
        # DELETE only reaches the guard triggers, which refuse every row of the log and
        # move rows planted beyond the head into audit_quarantine (docs/audit.md).
        sql.SQL("GRANT DELETE ON audit_event, audit_treenode, audit_checkpoint TO {}").format(
            ident
        ),
        sql.SQL("GRANT SELECT ON audit_quarantine TO {}").format(ident),
        sql.SQL("GRANT UPDATE (actor_id) ON audit_event TO {}").format(ident),
        sql.SQL("GRANT SELECT, UPDATE ON audit_loghead TO {}").format(ident),
        sql.SQL("GRANT EXECUTE ON FUNCTION audit_try_jsonb(text) TO {}").format(ident),
    ]
    for statement in statements:
        cursor.execute(statement.as_string(cursor.connection))
