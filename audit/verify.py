"""Full verification of the audit log against its signed checkpoints.

What `manage.py audit verify` (and the reviewer's "Verify the log" button) checks,
all in one read-only snapshot of the database:

1. the events' sequence numbers run 0, 1, 2, ... without a gap;
2. each event's leaf hash recomputes from its canonical entry;
3. the columns the reviewer filters and reads (time, actor, action, subject,
   request id, and the sequence number itself) agree with the hashed entry;
4. the tree recomputed from the entries has the head row's root;
5. every checkpoint in the database carries a valid signature by the log's key and
   matches the recomputed root at its size;
6. every checkpoint exported outside the database has a valid signature and is
   consistent with the current tree: a consistency proof built from the stored
   subtree hashes verifies from its root to the recomputed root. A tree smaller
   than an exported checkpoint is a rollback; a different root is a rewrite;
7. every *trusted* checkpoint (given by the verifier from outside the database: a
   file, or its state file, see audit/trust.py) the same way. This is the check
   that holds against whoever controls the database and the server's disk;
8. no row lies at or beyond the head (events with seq >= size, subtrees that end
   past it) and nothing was ever moved to `audit_quarantine`: such rows can only
   come from someone who bypassed the append-only triggers, and each is named;
9. when a root differs, the stored tree (the leaf hashes and subtree hashes kept
   at append time) is compared with the recomputed one to name the index of an
   entry rewritten together with its leaf hash.

A tampered row therefore shows up as the index it sits at, whether the attacker
edited the entry (2), a column (3), deleted a row (1) or swapped two (1/3); a
consistent rewrite of everything in the database still fails 5/6 because the
attacker lacks the signing key and cannot reach the exported checkpoints.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from audit import log as audit_log
from audit import signing, tlog
from audit.checkpoint import CheckpointError, open_checkpoint
from audit.models import TreeNode

MAX_PROBLEMS = 50
_FETCH = 20_000


@dataclass
class Problem:
    message: str
    index: int | None = None

    def __str__(self) -> str:
        return f"index {self.index}: {self.message}" if self.index is not None else self.message


@dataclass
class VerifyResult:
    size: int = 0
    root_hash: bytes = b""
    checkpoints_checked: int = 0
    exported_checked: int = 0
    trusted_checked: int = 0
    # The newest signed checkpoint that verified against the recomputed tree (for the
    # verifier's state file): (note, opened checkpoint).
    newest_verified: tuple | None = None
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    # Outside checkpoints of a history an operator abandoned (restore) and acknowledged
    # with a signed fork checkpoint (audit/rollback.py): reported, not failed.
    acknowledged_forks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None

    def add(self, message: str, index: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, index))

    def summary(self) -> str:
        if self.ok:
            forks = "".join(
                f"\n  acknowledged rollback: {fork}" for fork in self.acknowledged_forks
            )
            return (
                f"OK: {self.size} events, root {base64.b64encode(self.root_hash).decode()}, "
                f"{self.checkpoints_checked} signed checkpoints, {self.exported_checked} exported "
                f"and {self.trusted_checked} trusted checkpoints verified in {self.seconds:.2f} "
                f"s{forks}"
            )
        first = self.first_bad_index
        where = f"first bad index {first}" if first is not None else "no single index"
        return f"FAILED ({where}): {self.problems[0]}"

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "checkpoints_checked": self.checkpoints_checked,
            "exported_checked": self.exported_checked,
            "trusted_checked": self.trusted_checked,
            "first_bad_index": self.first_bad_index,
            "problems": [str(p) for p in self.problems],
            "seconds": round(self.seconds, 3),
            "acknowledged_forks": list(self.acknowledged_forks),
        }


_PG_COLUMN_CHECK = """
SELECT seq, problem FROM (
    SELECT seq,
        CASE
            WHEN e IS NULL THEN 'entry is not valid JSON'
            WHEN e->>'seq' IS DISTINCT FROM seq::text
                THEN 'entry belongs at index ' || coalesce(e->>'seq', '?')
                    || ' (rows moved or swapped)'
            WHEN e->>'action' IS DISTINCT FROM action
                THEN 'action column differs from the hashed entry'
            WHEN e->>'actor' IS DISTINCT FROM actor_name
                THEN 'actor column differs from the hashed entry'
            WHEN actor_id IS NOT NULL AND (e->>'actor_id') IS DISTINCT FROM actor_id::text
                THEN 'actor id column differs from the hashed entry'
            WHEN e->>'subject' IS DISTINCT FROM subject
                THEN 'subject column differs from the hashed entry'
            WHEN e->>'request_id' IS DISTINCT FROM request_id
                THEN 'request id column differs from the hashed entry'
            WHEN e->>'time' IS DISTINCT FROM
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                THEN 'time column differs from the hashed entry'
        END AS problem
    FROM (
        SELECT seq, action, actor_name, actor_id, subject, request_id, created_at, {parse} AS e
        FROM audit_event WHERE seq < %s
        OFFSET 0  -- keeps the planner from re-parsing the entry once per reference
    ) AS parsed
) AS checked
WHERE problem IS NOT NULL
ORDER BY seq
LIMIT %s
"""
# Casting is fast; the exception-safe helper costs a subtransaction per row, so it only
# runs when the fast query hits an entry that is not JSON at all (a damaged row).
_PG_FAST = _PG_COLUMN_CHECK.replace("{parse}", "entry::jsonb")
_PG_SAFE = _PG_COLUMN_CHECK.replace("{parse}", "audit_try_jsonb(entry)")


def _run_column_check(connection, size: int) -> list:
    def run(sql: str) -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, [size, MAX_PROBLEMS])
            return cursor.fetchall()

    try:
        if (
            connection.in_atomic_block
        ):  # a savepoint, so a failed cast leaves the transaction usable
            with transaction.atomic(using=connection.alias):
                return run(_PG_FAST)
        return run(_PG_FAST)
    except DatabaseError:
        return run(_PG_SAFE)


def _pg_column_check(using: str, size: int, out: list) -> None:
    """Run in a thread on its own connection, in parallel with the hashing."""
    connection = connections.create_connection(using)
    try:
        out.extend(_run_column_check(connection, size))
    except Exception as exc:  # reported, never swallowed
        out.append((None, f"column check failed: {exc}"))
    finally:
        connection.close()


def _python_column_problem(row, index: int) -> str | None:
    seq, entry, _leaf, created_at, actor_id, actor_name, action, subject, request_id = row
    try:
        data = json.loads(entry)
    except ValueError:
        return "entry is not valid JSON"
    if data.get("seq") != seq:
        return f"entry belongs at index {data.get('seq')} (rows moved or swapped)"
    checks = (
        ("action", action),
        ("actor", actor_name),
        ("subject", subject),
        ("request_id", request_id),
    )
    for key, column in checks:
        if data.get(key) != column:
            return f"{key.replace('_', ' ')} column differs from the hashed entry"
    if actor_id is not None and data.get("actor_id") != actor_id:
        return "actor id column differs from the hashed entry"
    stamp = audit_log._as_datetime(created_at)
    if stamp is None or audit_log.format_time(stamp) != data.get("time"):
        return "time column differs from the hashed entry"
    return None


def verify_log(
    using: str = DEFAULT_DB_ALIAS,
    *,
    exported: list[dict] | None = None,
    trusted: list[str] | None = None,
) -> VerifyResult:
    """Verify everything listed in the module docstring; never raises for a bad log.

    `trusted`: signed checkpoint notes the caller kept outside this database.
    """
    started = time.perf_counter()
    result = VerifyResult()
    verifier = signing.get_verifier()
    origin = signing.origin()
    exported = audit_log.read_exported() if exported is None else exported
    connection = connections[using]
    postgres = connection.vendor == "postgresql"

    outermost = not connection.in_atomic_block
    with _snapshot(connection, outermost):
        with connection.cursor() as cursor:
            if postgres and outermost:  # one consistent snapshot while appends go on
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            head = audit_log.read_head(using)
            cursor.execute("SELECT size, root_hash, note FROM audit_checkpoint ORDER BY size")
            db_checkpoints = [(int(s), bytes(r), n) for s, r, n in cursor.fetchall()]
        result.size = head.size

        column_rows: list = []
        checker = None
        if postgres and outermost:  # in parallel, on a second connection (the other CPU core)
            checker = threading.Thread(
                target=_pg_column_check, args=(using, head.size, column_rows), daemon=True
            )
            checker.start()

        # Roots we must compare against, by tree size: signed checkpoints in the database.
        wanted: dict[int, list[tuple[str, bytes]]] = {}
        for size, root_hash, note in db_checkpoints:
            try:
                signed = open_checkpoint(note, verifier, origin)
            except CheckpointError as exc:
                result.add(f"database checkpoint at size {size}: {exc}")
                continue
            if signed.size != size or signed.root_hash != root_hash:
                result.add(
                    f"database checkpoint at size {size}: its columns differ from its signed note"
                )
            if size > head.size:
                result.add(
                    f"database checkpoint at size {size} is beyond the log's size {head.size}"
                )
                continue
            wanted.setdefault(size, []).append(("database checkpoint", signed.root_hash, note))
            result.checkpoints_checked += 1

        signed_exports = _open_exported(result, exported, verifier, origin)
        for signed, note in signed_exports:
            wanted.setdefault(signed.size, []).append(
                ("exported checkpoint", signed.root_hash, note)
            )
        signed_trusted = []
        for note in trusted or []:
            try:
                signed_trusted.append(open_checkpoint(note, verifier, origin))
            except CheckpointError as exc:
                result.add(f"trusted checkpoint: {exc}")
                continue
            wanted.setdefault(signed_trusted[-1].size, []).append(
                ("trusted checkpoint", signed_trusted[-1].root_hash, note)
            )

        forks = _signed_forks(
            [n for _, n in signed_exports] + list(trusted or []), verifier, origin
        )
        frontier = tlog.Frontier()
        roots_at: dict[int, bytes] = {0: tlog.EMPTY_ROOT}
        sha256 = hashlib.sha256
        columns = (
            "seq, entry, leaf_hash"
            if postgres
            else (
                "seq, entry, leaf_hash, created_at, actor_id, actor_name, action, subject, "
                "request_id"
            )
        )
        expected = 0
        with connection.chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM audit_event WHERE seq < %s ORDER BY seq", [head.size]
            )
            while rows := cursor.fetchmany(_FETCH):
                for row in rows:
                    seq, entry, stored_leaf = row[0], row[1], row[2]
                    if seq != expected:
                        if seq > expected:
                            result.add(
                                f"events {expected}..{seq - 1} are missing (deleted rows)", expected
                            )
                        expected = seq
                    leaf = sha256(b"\x00" + entry.encode("utf-8")).digest()
                    if leaf != stored_leaf:
                        result.add(
                            "entry does not match its leaf hash (the event was altered)", seq
                        )
                    if not postgres and (problem := _python_column_problem(row, seq)):
                        result.add(problem, seq)
                    frontier.append(leaf)
                    expected += 1
                    if frontier.size in wanted:
                        roots_at[frontier.size] = frontier.root()
        if expected < head.size:
            result.add(f"events {expected}..{head.size - 1} are missing (deleted rows)", expected)
        result.root_hash = frontier.root()
        roots_at[frontier.size] = result.root_hash

        if checker is not None:
            checker.join()
        elif postgres:  # inside the caller's transaction: only this connection sees its snapshot
            column_rows.extend(_run_column_check(connection, head.size))
        if postgres:
            for seq, problem in column_rows:
                result.add(problem, seq)

        root_mismatch = False
        if result.root_hash != head.root_hash or frontier.size != head.size:
            result.add("recomputed root differs from the head row's root")
            root_mismatch = True
        matched: list[int] = [0]
        mismatched: list[int] = []
        superseded: set[int] = set()
        for size, sources in sorted(wanted.items()):
            for source, root_hash, note in sources:
                fork = _covering_fork(forks, size, root_hash, roots_at, result.size)
                if source != "database checkpoint" and fork is not None:
                    base, from_size, fork_size = fork
                    superseded.add(size)
                    message = (
                        f"{source} of size {size} belongs to the history abandoned at index {base} "
                        f"(events {base}..{from_size - 1} of it lost; signed fork checkpoint of "
                        f"size {fork_size})"
                    )
                    if message not in result.acknowledged_forks:
                        result.acknowledged_forks.append(message)
                    continue
                if size > result.size:
                    result.add(
                        f"{source} of size {size} is larger than the log ({result.size} events): "
                        f"the database was rolled back or events {result.size}..{size - 1} deleted",
                        result.size,
                    )
                elif roots_at.get(size) != root_hash:
                    root_mismatch = True
                    mismatched.append(size)
                    result.add(
                        f"{source} at size {size}: recomputed root differs (the log was rewritten)"
                    )
                else:
                    matched.append(size)
                    result.exported_checked += source == "exported checkpoint"
                    result.trusted_checked += source == "trusted checkpoint"
                    if result.newest_verified is None or size >= result.newest_verified[1].size:
                        try:
                            result.newest_verified = (note, open_checkpoint(note, verifier, origin))
                        except CheckpointError:
                            pass
        if mismatched:
            first_bad = min(mismatched)
            good = max(m for m in matched if m < first_bad)
            result.add(
                f"signed roots agree up to size {good} and differ from size {first_bad}: the "
                f"rewrite lies in events {good}..{first_bad - 1}"
            )
        outside = [
            c for c in [c for c, _ in signed_exports] + signed_trusted if c.size not in superseded
        ]
        if outside:
            _check_stored_tree(result, max(outside, key=lambda c: c.size), using)
        _check_beyond_head(result, connection, head)
        if root_mismatch:
            _locate_rewrite(result, connection, head.size)
    result.seconds = time.perf_counter() - started
    return result


def _signed_forks(
    notes: list[str], verifier, origin: str
) -> list[tuple[int, int, bytes, int, bytes]]:
    """(base index, abandoned size, abandoned root, fork size, fork root) of each signed fork
    note."""
    from audit.rollback import fork_of

    forks = []
    for note in notes:
        declared = fork_of(note)
        if declared is None:
            continue
        try:
            signed = open_checkpoint(note, verifier, origin)
        except CheckpointError:
            continue  # reported where the note is checked
        forks.append((signed.size - 1, declared[0], declared[1], signed.size, signed.root_hash))
    return forks


def _covering_fork(forks, size: int, root_hash: bytes, roots_at: dict, log_size: int):
    """The acknowledged fork that abandoned a checkpoint of (size, root) the tree does not match."""
    if size <= log_size and roots_at.get(size) == root_hash:
        return None  # it matches the current history
    for base, from_size, _from_root, fork_size, fork_root in forks:
        if (
            base < size <= from_size
            and fork_size <= log_size
            and roots_at.get(fork_size) == fork_root
        ):
            return base, from_size, fork_size
    return None


@contextlib.contextmanager
def _snapshot(connection, outermost: bool):
    """One consistent read of the log that does not hold up appends.

    PostgreSQL: a REPEATABLE READ transaction (set by the caller). SQLite: embedded mode
    begins every Django transaction IMMEDIATE (it takes the write lock), which would
    stall writers for as long as a verify runs; a plain deferred read transaction gives
    the same snapshot under WAL while writers go on.
    """
    if connection.vendor != "sqlite" or not outermost:
        with transaction.atomic(using=connection.alias):
            yield
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")  # read only: nothing to keep


def _open_exported(result: VerifyResult, exported: list[dict], verifier, origin: str) -> list:
    """(opened checkpoint, note) for each exported record that verifies."""
    opened = []
    for record in exported:
        where = f"exported checkpoint (line {record.get('line', '?')})"
        if "invalid" in record:
            result.add(record["invalid"])
            continue
        try:
            opened.append((open_checkpoint(record["note"], verifier, origin), record["note"]))
        except CheckpointError as exc:
            result.add(f"{where}: {exc}")
    return opened


def _check_stored_tree(result: VerifyResult, signed, using: str) -> None:
    """The stored subtree hashes (what proofs are built from) prove the latest export."""
    if signed.size > result.size or signed.size == 0:
        return
    try:
        proof = audit_log.consistency_proof(signed.size, result.size, using)
        tlog.verify_consistency(signed.size, result.size, signed.root_hash, result.root_hash, proof)
    except (tlog.ProofError, audit_log.TreeError) as exc:
        result.add(
            f"stored tree hashes do not prove the outside checkpoint of size {signed.size}: {exc}"
        )


def _check_beyond_head(result: VerifyResult, connection, head) -> None:
    """Rows the log does not contain must not exist; name each (and what was quarantined)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, action FROM audit_event WHERE seq >= %s ORDER BY seq LIMIT %s",
            [head.size, MAX_PROBLEMS],
        )
        for seq, action in cursor.fetchall():
            result.add(
                f"row {action!r} at seq {seq} lies beyond the head (the log has {head.size} "
                "events): not part of the log; written around the append-only triggers",
                int(seq),
            )
        where, params = audit_log.beyond_head_node_sql(head.size)
        cursor.execute(
            f"SELECT key FROM audit_treenode WHERE {where} ORDER BY key LIMIT %s",
            [*params, MAX_PROBLEMS],
        )
        for (key,) in cursor.fetchall():
            level, index = (
                int(key) >> TreeNode.LEVEL_SHIFT,
                int(key) & ((1 << TreeNode.LEVEL_SHIFT) - 1),
            )
            result.add(
                f"stored subtree (level {level}, index {index}) lies beyond the head: not part of "
                "the tree",
                index << level,
            )
        cursor.execute(
            "SELECT table_name, row_key FROM audit_quarantine ORDER BY id LIMIT %s", [MAX_PROBLEMS]
        )
        for table, key in cursor.fetchall():
            where_ = f"seq {key}" if table == "audit_event" else f"key {key}"
            result.add(
                f"{table} row at {where_} was planted beyond the head around the append-only "
                "triggers and moved to audit_quarantine by an append",
                int(key) if table == "audit_event" else None,
            )


def _locate_rewrite(result: VerifyResult, connection, size: int) -> None:
    """Compare the stored tree with the one recomputed from the stored leaf hashes.

    Entries already agree with their leaf hashes (or were reported); a root differs,
    so someone rewrote an entry together with its leaf hash. The leaf hash copy and
    the subtree hashes written at append time still hold the old values unless they
    were rewritten too: the lowest level that disagrees names the index (level 0:
    the exact event; above: the range under that subtree).
    """
    level_hashes: list[bytes] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute("SELECT leaf_hash FROM audit_event WHERE seq < %s ORDER BY seq", [size])
        while rows := cursor.fetchmany(_FETCH):
            level_hashes.extend(bytes(h) for (h,) in rows)
    if len(level_hashes) != size:
        return  # missing rows were already named
    level, shift = 0, TreeNode.LEVEL_SHIFT
    while level_hashes:
        stored: dict[int, bytes] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, hash FROM audit_treenode WHERE key >= %s AND key < %s",
                [level << shift, (level << shift) + len(level_hashes)],
            )
            stored = {int(k) & ((1 << shift) - 1): bytes(h) for k, h in cursor.fetchall()}
        differing = sorted(i for i, h in stored.items() if h != level_hashes[i])
        for index in differing[:MAX_PROBLEMS]:
            if level == 0:
                result.add(
                    "entry and leaf hash were rewritten together: the leaf hash kept with the "
                    "tree at append time differs",
                    index,
                )
            else:
                lo, hi = index << level, min((index + 1) << level, size)
                result.add(
                    f"events {lo}..{hi - 1} were rewritten together with their leaf hashes: the "
                    f"stored subtree hash (level {level}, index {index}) differs",
                    lo,
                )
        if differing:
            return
        level_hashes = [
            tlog.hash_node(level_hashes[i], level_hashes[i + 1])
            for i in range(0, len(level_hashes) - 1, 2)
        ]
        level += 1
