"""Every statement form that could alter or remove a row of the log, on both databases.

The walk runs each form against each audit table and then compares a digest of every
table with the one taken before: a form that got through, even without an error,
fails the test. Rows planted beyond the head may go, but only into the quarantine.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest
from django.db import DatabaseError, connection, transaction

from audit import log as audit_log
from audit.verify import verify_log
from tests.audit import action_names as actions
from tests.conftest import ROOT, worker_env

TABLES = ("audit_event", "audit_treenode", "audit_checkpoint", "audit_loghead", "audit_quarantine")
KEYS = {
    "audit_event": "seq",
    "audit_treenode": "key",
    "audit_checkpoint": "size",
    "audit_loghead": "id",
    "audit_quarantine": "id",
}

POSTGRES_FORMS = [
    "UPDATE {t} SET {k} = {k} WHERE {k} = {v}",
    "UPDATE {t} SET {k} = {k} + 1000 WHERE {k} = {v}",  # moving a row beyond the head
    "DELETE FROM {t} WHERE {k} = {v}",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
    "TRUNCATE {t} RESTART IDENTITY CASCADE",
    "INSERT INTO {t} SELECT * FROM {t} WHERE {k} = {v} ON CONFLICT ({k}) DO UPDATE SET {k} = "
    "EXCLUDED.{k}",
    "MERGE INTO {t} AS x USING (SELECT {v} AS k) AS s ON x.{k} = s.k WHEN MATCHED THEN UPDATE SET "
    "{k} = x.{k}",
    "MERGE INTO {t} AS x USING (SELECT {v} AS k) AS s ON x.{k} = s.k WHEN MATCHED THEN DELETE",
    "DELETE FROM {t} AS x USING audit_loghead AS h WHERE x.{k} = {v} AND h.id = 1",
    "UPDATE {t} AS x SET {k} = x.{k} FROM audit_loghead AS h WHERE x.{k} = {v} AND h.id = 1",
    "WITH gone AS (DELETE FROM {t} WHERE {k} = {v} RETURNING *) SELECT count(*) FROM gone",
]
POSTGRES_EXTRA = [
    # the allowed UPDATE's shape, abused
    "UPDATE audit_event SET actor_id = NULL, subject = 'x' WHERE seq = 1",
    "UPDATE audit_event SET entry = entry || ' ' WHERE seq = 1",
    "UPDATE audit_event SET leaf_hash = leaf_hash WHERE seq = 1",
    "UPDATE audit_loghead SET size = 0",
    "INSERT INTO audit_loghead SELECT * FROM audit_loghead ON CONFLICT (id) DO UPDATE SET size = 0",
    "MERGE INTO audit_loghead AS x USING (SELECT 1 AS k) AS s ON x.id = s.k WHEN MATCHED THEN "
    "UPDATE SET size = 0",
    "UPDATE audit_checkpoint SET note = note || ' '",
    "UPDATE audit_treenode SET hash = hash",
    "UPDATE audit_quarantine SET row_data = ''",
]

SQLITE_FORMS = [
    "UPDATE {t} SET {k} = {k} WHERE {k} = {v}",
    "UPDATE {t} SET {k} = {k} + 1000 WHERE {k} = {v}",
    "UPDATE OR REPLACE {t} SET {k} = {k} WHERE {k} = {v}",
    "DELETE FROM {t} WHERE {k} = {v}",
    "DELETE FROM {t}",
    "DELETE FROM {t} WHERE {k} = {v} RETURNING *",
    "INSERT OR REPLACE INTO {t} SELECT * FROM {t} WHERE {k} = {v}",
    "REPLACE INTO {t} SELECT * FROM {t} WHERE {k} = {v}",
    "INSERT INTO {t} SELECT * FROM {t} WHERE {k} = {v} ON CONFLICT ({k}) DO UPDATE SET {k} = "
    "excluded.{k}",
    "INSERT INTO {t} SELECT * FROM {t} WHERE {k} = {v} ON CONFLICT DO UPDATE SET {k} = "
    "excluded.{k}",
]
SQLITE_EXTRA = [
    "UPDATE audit_event SET actor_id = NULL, subject = 'x' WHERE seq = 1",
    "INSERT OR REPLACE INTO audit_event (seq, created_at, action, entry, leaf_hash) "
    "VALUES (1, '2020-01-01', 'job.failed', '{{}}', zeroblob(32))",
    "INSERT OR REPLACE INTO audit_treenode (key, hash) VALUES (1, zeroblob(32))",
    "INSERT OR REPLACE INTO audit_loghead (id, size, frontier, root_hash, checkpoint_size) "
    "VALUES (1, 0, X'', zeroblob(32), 0)",
    "REPLACE INTO audit_loghead (id, size, frontier, root_hash, checkpoint_size) VALUES (1, 0, "
    "X'', zeroblob(32), 0)",
    "INSERT INTO audit_loghead SELECT * FROM audit_loghead WHERE true ON CONFLICT (id) DO UPDATE "
    "SET size = 0",
    "UPDATE audit_loghead SET size = 0",
    "UPDATE audit_checkpoint SET note = note || ' '",
]


def forms(templates: list[str], extra: list[str], values: dict[str, int]) -> list[str]:
    return [f.format(t=t, k=KEYS[t], v=values[t]) for t in TABLES for f in templates] + [
        e.format() for e in extra
    ]


# --- PostgreSQL -----------------------------------------------------------------------


def pg_digest() -> dict:
    out = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                f"FROM {table} AS x"
            )
            out[table] = cursor.fetchone()
    return out


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_refuses_every_statement_that_alters_or_removes_a_row(fresh_log):
    for i in range(6):
        audit_log.append_event(actions.JOB_SUBMITTED, subject="s", payload={"i": i})
    audit_log.make_checkpoint()
    with connection.cursor() as cursor:  # evidence already in the quarantine
        cursor.execute(
            "INSERT INTO audit_quarantine (table_name, row_key, row_data) VALUES ('audit_event', "
            "99, '{}') RETURNING id"
        )
        quarantine_id = cursor.fetchone()[0]
    values = {
        "audit_event": 1,
        "audit_treenode": 1,
        "audit_checkpoint": 6,
        "audit_loghead": 1,
        "audit_quarantine": quarantine_id,
    }
    before = pg_digest()
    let_through = []
    for statement in forms(POSTGRES_FORMS, POSTGRES_EXTRA, values):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)
        except DatabaseError as exc:
            assert "append-only" in str(exc) or "only grow" in str(exc), (statement, exc)
        else:
            let_through.append(statement)
    # Forms that matched no row or changed nothing may pass; the digest says if anything changed.
    assert pg_digest() == before, let_through
    # What got through were no-op updates (a column set to itself); nothing removed a row.
    assert not [s for s in let_through if "DELETE" in s or "TRUNCATE" in s], let_through
    problems = verify_log().problems  # the log is intact; only the quarantined row is reported
    assert len(problems) == 1 and "moved to audit_quarantine" in str(problems[0])


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_lets_only_rows_beyond_the_head_go_and_keeps_them(fresh_log):
    for i in range(3):
        audit_log.append_event(actions.JOB_SUBMITTED, subject="s", payload={"i": i})
    with (
        connection.cursor() as cursor
    ):  # the app's own role may insert beyond the head (verify names it)
        cursor.execute(
            "INSERT INTO audit_event (seq, created_at, action, entry, leaf_hash) "
            "VALUES (7, now(), 'job.failed', 'planted', %s)",
            [b"\x01" * 32],
        )
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "DELETE FROM audit_event WHERE seq >= 2"
        )  # row 2 is part of the log: all refused
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_event")
        assert cursor.fetchone()[0] == 4
        cursor.execute("DELETE FROM audit_event WHERE seq >= 3")
        cursor.execute("SELECT table_name, row_key, row_data FROM audit_quarantine")
        ((table, key, data),) = cursor.fetchall()
    assert (table, key) == ("audit_event", 7) and '"entry":"planted"' in data
    assert verify_log().first_bad_index == 7


# --- SQLite (embedded) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory, django_db_setup, django_db_blocker):
    """A migrated SQLite file of its own (the walk plants rows; the shared test database stays
    clean)."""
    folder = tmp_path_factory.mktemp("embedded-log")
    with django_db_blocker.unblock():
        env = worker_env()
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        STYLELEDGER_VAR_DIR=str(folder),
        AUDIT_CHECKPOINT_DIR=str(folder / "cp"),
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "db.sqlite3", env


def run_django(env: dict, code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    prelude = (
        "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'editplatform.settings')\ndjango.setup()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


WRITER = """
import sys, time
from django.db import connection, transaction
from audit import log
from tests.audit import action_names as actions
from audit.models import AuditEvent
n = int(sys.argv[1])
failures = []
for i in range(int(sys.argv[2])):
    try:
        # a submit: read first, then write (the lock upgrade that used to fail)
        with transaction.atomic():
            AuditEvent.objects.count()
            time.sleep(0.002)
            log.append_event(actions.JOB_SUBMITTED, subject=f"w{n}", payload={"i": i})
    except Exception as exc:
        failures.append(repr(exc))
print(len(failures), failures[:3])
sys.exit(1 if failures else 0)
"""


@pytest.mark.embedded
def test_sqlite_concurrent_writers_queue_instead_of_failing(sqlite_file):
    path, env = sqlite_file
    prelude = (
        "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'editplatform.settings')\ndjango.setup()\n"
    )
    writers, each = 6, 20
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", prelude + WRITER, str(n), str(each)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(writers)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    check = run_django(
        env,
        """
        from audit.models import AuditEvent
        from audit.verify import verify_log
        seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
        result = verify_log()
        print(len(seqs), seqs == list(range(len(seqs))), result.ok, result.problems[:3])
    """,
    )
    assert check.stdout.split()[:3] == [str(writers * each), "True", "True"], (
        check.stdout + check.stderr
    )


def sqlite_digest(db: sqlite3.Connection) -> dict:
    return {
        table: sorted(map(repr, db.execute(f"SELECT * FROM {table}").fetchall()))
        for table in TABLES
    }


@pytest.mark.embedded
def test_sqlite_refuses_every_statement_that_alters_or_removes_a_row(sqlite_file):
    path, env = sqlite_file
    made = run_django(
        env,
        """
        from audit import log
        from tests.audit import action_names as actions
        for i in range(6):
            log.append_event(actions.JOB_SUBMITTED, subject="s", payload={"i": i})
        log.make_checkpoint()
        print(log.read_head().size)
    """,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    size = int(made.stdout.split()[-1])
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        # Any writer may insert beyond the head; such a row may go, but only into the quarantine.
        db.execute(
            "INSERT INTO audit_event (seq, created_at, action, entry, leaf_hash) "
            "VALUES (?, '2020-01-01', 'job.failed', 'planted', zeroblob(32))",
            [size + 5],
        )
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_event WHERE seq >= ?", [size - 1])
        db.execute("DELETE FROM audit_event WHERE seq >= ?", [size])
        quarantined = db.execute(
            "SELECT table_name, row_key, row_data FROM audit_quarantine"
        ).fetchall()
        assert [(t, k) for t, k, _ in quarantined] == [("audit_event", size + 5)]
        assert '"entry":"planted"' in quarantined[0][2]

        checkpoint = db.execute("SELECT max(size) FROM audit_checkpoint").fetchone()[0]
        quarantine_id = db.execute("SELECT max(id) FROM audit_quarantine").fetchone()[0]
        values = {
            "audit_event": 1,
            "audit_treenode": 1,
            "audit_checkpoint": checkpoint,
            "audit_loghead": 1,
            "audit_quarantine": quarantine_id,
        }
        before = sqlite_digest(db)
        let_through = []
        for statement in forms(SQLITE_FORMS, SQLITE_EXTRA, values):
            try:
                db.execute("BEGIN")
                db.execute(statement).fetchall()
                db.execute("COMMIT")
                let_through.append(statement)
            except sqlite3.DatabaseError as exc:
                db.execute("ROLLBACK")
                assert "append-only" in str(exc), (statement, exc)
        assert sqlite_digest(db) == before, let_through
        assert not [
            s for s in let_through if "DELETE" in s or s.startswith(("REPLACE", "INSERT"))
        ], let_through
        assert (
            db.execute("PRAGMA recursive_triggers").fetchone()[0] == 0
        )  # REPLACE fires no delete trigger
    finally:
        db.close()
    verified = run_django(
        env,
        """
        from audit.verify import verify_log
        result = verify_log()
        print([str(p) for p in result.problems])
    """,
    )
    # The log itself is intact; the one planted row is reported from the quarantine.
    problems = eval(verified.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr of a list of str
    assert len(problems) == 1 and "planted beyond the head" in problems[0], (
        verified.stdout + verified.stderr
    )
