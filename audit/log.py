"""Appending to the audit log, checkpoints, and reading tree hashes back.

`append_event` is the one way in. Appends are serialised by a row lock on the single
`audit_loghead` row (PostgreSQL: SELECT ... FOR UPDATE, or `audit_expect_head`; SQLite:
a write to that row takes the database's write lock first), which keeps sequence
numbers gap-free and contiguous under any number of writers and processes.

Two ways in, one log (the trade-off, issue 18):

* Inside the caller's transaction (``transaction.atomic``): the event commits or rolls
  back with the change it describes, and its sequence number is known at once. The
  price is that the head stays locked until the caller commits, so such appends are
  one per transaction and serialise on the head: call `append_event` near the end of
  your transaction. Jobs, approvals and accounts append this way (their event must not
  exist without their change, nor the change without its event).
* Outside any transaction: group commit (`_Group`). Appends that arrive together from
  this process's threads share one transaction, one head lock and one head update; a
  call returns once that transaction committed, so nothing acknowledged is lost by a
  crash mid-batch (an uncommitted batch acknowledged nobody). For events that stand
  alone (a sign-in, a view, a check); most such callers still wrap their append in
  `transaction.atomic()` today and can drop the wrapper to be group-committed.

Event filters (`register_event_filter`; the jobs app's keyed-id rewrite is one) run
before the entry is built, outside the head lock; a batch filter runs once per group,
so its lookup is one query per group commit, not one per event (issue 18: the
keyed-id lookup through the ORM was two thirds of an append's CPU). The entry text is
composed around the payload's canonical JSON, rendered once (`_compose_entry`).

Either way an append costs one database round trip on PostgreSQL when this process's
cached head (`_HeadCache`) is current (plus the filters' lookup, if any): the writes
are computed from it and sent behind `audit_expect_head` (migration 0004), which locks
the head and refuses if another writer moved it; the append then locks and reads the
head (`_append_locked`).

Each append stores the event (its canonical JSON entry and leaf hash), a copy of the
leaf hash with the tree (level 0, so a rewritten entry + leaf hash is still located),
the complete subtrees it closes (so proofs read O(log n) rows) and the new right edge
and root in the head row. A row planted beyond the head never blocks an append: it is
moved to `audit_quarantine` and the append goes on (see `_execute_writes`). Every
AUDIT_CHECKPOINT_EVERY events or AUDIT_CHECKPOINT_SECONDS seconds, whichever comes
first, the append also signs a checkpoint; it is written to the export file outside
the database once the transaction commits (never for a transaction that rolls back).
A periodic task (`audit.tasks.checkpoint`) covers the quiet tail and
re-exports any checkpoint a crash kept from the file.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    connections,
    transaction,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import actions, rollback, signing, tlog
from audit.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalJSONError,
    canonical_string,
    canonical_text,
)
from audit.checkpoint import Checkpoint as CheckpointBody
from audit.checkpoint import sign_checkpoint
from audit.models import AuditEvent, Checkpoint, TreeNode
from audit.signals import event_appended
from editplatform.core.middleware import current_request_id

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1
EXPORT_FILE = "checkpoints.jsonl"
_LIMITS = {"subject": 200, "request_id": 64, "actor_name": 150}

# Apps rewrite what an event records before it is hashed (register_event_filter): the
# jobs app replaces artifacts' plain hashes with keyed commitments (issue 17).
_EVENT_FILTERS: list = []


def register_event_filter(event_filter) -> None:
    """Run ``event_filter`` on every event before it is validated and hashed (idempotent).

    A plain filter is ``event_filter(action, subject, payload, subjects) -> (subject,
    payload, subjects)``. A filter with a ``batch`` attribute (see `batch_filter`) is
    given a whole group commit's events at once instead, so a filter that looks things
    up in the database pays one query per group, not one per event (issue 18: the
    keyed-id lookup was two thirds of an append's CPU).
    """
    if event_filter not in _EVENT_FILTERS:
        _EVENT_FILTERS.append(event_filter)


def batch_filter(function):
    """Mark ``function(events) -> events`` as a batch event filter for `register_event_filter`.

    ``events`` is a list of ``(action, subject, payload, subjects)`` tuples; the result
    is a list of ``(subject, payload, subjects)`` in the same order. Raising fails every
    event of the group (each is then retried alone, so one bad event fails alone).
    """
    function.batch = True
    return function


def _apply_filters(pendings: Sequence[_Pending]) -> list[_Pending]:
    """The events as the registered filters rewrite them, checked (`_finish`); the inputs
    are left as they were, so a failed group can be retried event by event."""
    out = [dataclasses.replace(p, subjects=list(p.subjects)) for p in pendings]
    for event_filter in _EVENT_FILTERS:
        if getattr(event_filter, "batch", False):
            results = event_filter([(p.action, p.subject, p.payload, p.subjects) for p in out])
            if len(results) != len(out):
                raise RuntimeError(f"event filter {event_filter!r} lost events")
        else:
            results = [event_filter(p.action, p.subject, p.payload, p.subjects) for p in out]
        for pending, (subject, payload, subjects) in zip(out, results, strict=True):
            pending.subject, pending.payload, pending.subjects = subject, payload, list(subjects)
    for pending in out:
        _finish(pending)
    return out


class TreeError(RuntimeError):
    """Stored tree hashes are missing: the log's tables were tampered with or damaged."""


@dataclass
class Head:
    size: int
    frontier: bytes
    root_hash: bytes
    last_time: dt.datetime | None
    checkpoint_size: int
    checkpoint_at: dt.datetime | None


def format_time(value: dt.datetime) -> str:
    """The entry's timestamp: UTC, microseconds, 'Z' (one spelling per instant)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_datetime(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        parsed = value
    else:
        parsed = parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _lock_head(cursor, vendor: str) -> Head:
    if vendor == "postgresql":
        cursor.execute(
            "SELECT size, frontier, root_hash, last_time, checkpoint_size, checkpoint_at "
            "FROM audit_loghead WHERE id = 1 FOR UPDATE"
        )
    else:
        # SQLite: take the write lock before reading, so no two appends read one size.
        cursor.execute("UPDATE audit_loghead SET size = size WHERE id = 1")
        cursor.execute(
            "SELECT size, frontier, root_hash, last_time, checkpoint_size, checkpoint_at "
            "FROM audit_loghead WHERE id = 1"
        )
    row = cursor.fetchone()
    if row is None:
        raise TreeError("the audit log head row is missing (run migrations; was it deleted?)")
    size, frontier, root_hash, last_time, cp_size, cp_at = row
    return Head(
        int(size),
        bytes(frontier),
        bytes(root_hash),
        _as_datetime(last_time),
        int(cp_size),
        _as_datetime(cp_at),
    )


def read_head(using: str = DEFAULT_DB_ALIAS) -> Head:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT size, frontier, root_hash, last_time, checkpoint_size, checkpoint_at "
            "FROM audit_loghead WHERE id = 1"
        )
        row = cursor.fetchone()
    if row is None:
        raise TreeError("the audit log head row is missing")
    size, frontier, root_hash, last_time, cp_size, cp_at = row
    return Head(
        int(size),
        bytes(frontier),
        bytes(root_hash),
        _as_datetime(last_time),
        int(cp_size),
        _as_datetime(cp_at),
    )


def _resolve_actor(actor, actor_name: str | None) -> tuple[object | None, str, int | None]:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None  # AnonymousUser
    if actor_name is None:
        actor_name = actor.get_username() if actor is not None else ""
    return actor, actor_name, (actor.pk if actor is not None else None)


def build_entry(
    *,
    seq: int,
    time: dt.datetime,
    action: str,
    actor_name: str,
    actor_id: int | None,
    subject: str,
    request_id: str,
    payload: dict,
    subjects: Sequence[str] = (),
) -> str:
    """The canonical JSON entry of one event (what its leaf hash commits to)."""
    return _compose_entry(
        seq,
        format_time(time),
        action,
        actor_name,
        actor_id,
        subject,
        request_id,
        canonical_text(payload),
        subjects,
    )


def _compose_entry(
    seq, time_text, action, actor_name, actor_id, subject, request_id, payload_text, subjects
) -> str:
    """`canonical_text` of the entry object, written out with its keys in canonical order.

    Why not `canonical_text(dict)`: the payload is already rendered (`_finish` checked it
    that way) and the rest are a few strings and integers, so composing the text saves
    the second walk over the payload on every append. tests/audit/test_entry_text.py
    checks it against `canonical_text` of the same object.
    """
    if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise CanonicalJSONError(f"seq {seq!r} is not a JSON-safe index")
    if actor_id is None:
        actor_id_text = "null"
    elif type(actor_id) is int and abs(actor_id) <= MAX_SAFE_INTEGER:
        actor_id_text = str(actor_id)
    else:
        raise CanonicalJSONError(f"actor_id {actor_id!r} is not a JSON-safe integer")
    parts = [
        '{"action":',
        canonical_string(action),
        ',"actor":',
        canonical_string(actor_name),
        ',"actor_id":',
        actor_id_text,
        ',"payload":',
        payload_text,
        ',"request_id":',
        canonical_string(request_id),
        ',"seq":',
        str(seq),
        ',"subject":',
        canonical_string(subject),
    ]
    if subjects:  # absent when none: old entries unchanged
        parts += [',"subjects":[', ",".join(canonical_string(s) for s in subjects), "]"]
    parts += [',"time":', canonical_string(time_text), ',"v":', str(ENTRY_VERSION), "}"]
    return "".join(parts)


def _extra_subjects(subject: str, subjects: Sequence[str]) -> list[str]:
    """The extra subjects, de-duplicated in order, without the main subject or blanks."""
    if isinstance(subjects, str):
        raise TypeError("subjects must be a list of strings, not one string")
    out: list[str] = []
    for value in subjects:
        value = str(value)
        if len(value) > _LIMITS["subject"]:
            raise ValueError(f"subject is longer than {_LIMITS['subject']} characters")
        if value and value != subject and value not in out:
            out.append(value)
    return out


MAX_BATCH = 256  # events per group commit (one transaction, one head update)
HEAD_MOVED = "SL409"  # SQLSTATE raised by audit_expect_head (migration 0004)


@dataclass
class _Pending:
    """One validated event waiting for its sequence number."""

    action: str
    actor: object | None
    actor_name: str
    actor_id: int | None
    subject: str
    request_id: str
    payload: dict
    subjects: list[str]
    payload_text: str = ""  # the payload's canonical JSON, once filters have run


@dataclass
class _Plan:
    """The writes that append a run of events to a given head, and what follows commit."""

    events: list[AuditEvent]
    statements: list[str]
    params: list
    checkpoints: list[tuple[str, int, bytes]]  # (note, size, root) to export after commit
    head: Head  # the head once these writes commit


def append_event(
    action: str,
    *,
    actor=None,
    subject: str = "",
    payload: dict | None = None,
    request_id: str | None = None,
    actor_name: str | None = None,
    subjects: Sequence[str] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> AuditEvent:
    """Append one event to the log; return it once it is part of the log.

    Inside a transaction (``transaction.atomic``), the event joins it: it commits or
    rolls back with the caller's change, and the head stays locked until the caller
    commits (so keep such transactions short). Called outside any transaction, the
    event is group-committed: appends that arrive together from this process's threads
    share one transaction and one head update (see `_Group`), and the call returns once
    that transaction has committed.

    ``subjects`` names further subjects the event is about (besides ``subject``): they
    go into the hashed entry and into the `audit_event_subject` index, so the event is
    found under each of them.
    """
    pending = _prepare(action, actor, subject, payload, request_id, actor_name, subjects)
    connection = connections[using]
    if (
        connection.in_atomic_block
        or not connection.get_autocommit()
        or rollback.bypassed()
        or getattr(_leading, "on", False)
    ):
        return _append_in_transaction(_apply_filters([pending])[0], using)
    return _group(using).append(pending)


def _prepare(action, actor, subject, payload, request_id, actor_name, subjects) -> _Pending:
    """Validate an event before it is queued or any lock is taken (bad input never
    reaches the log); `_apply_filters` and `_finish` complete it."""
    actions.validate(action)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise TypeError("payload must be a dict")
    if isinstance(subjects, str):
        raise TypeError("subjects must be a list of strings, not one string")
    if request_id is None:
        request_id = current_request_id()
    if request_id == "-":
        request_id = ""
    actor, actor_name, actor_id = _resolve_actor(actor, actor_name)
    return _Pending(
        action, actor, actor_name, actor_id, str(subject), request_id, payload, list(subjects)
    )


def _finish(pending: _Pending) -> None:
    """Check a filtered event and render its payload once (the entry reuses the text)."""
    for name, value in (
        ("subject", pending.subject),
        ("request_id", pending.request_id),
        ("actor_name", pending.actor_name),
    ):
        if len(value) > _LIMITS[name]:
            raise ValueError(f"{name} is longer than {_LIMITS[name]} characters")
    pending.payload_text = canonical_text(pending.payload)  # refuses a non-JSON payload
    pending.subjects = _extra_subjects(pending.subject, pending.subjects)


def _append_in_transaction(pending: _Pending, using: str) -> AuditEvent:
    """Append inside the caller's transaction (opening one if there is none)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        with transaction.atomic(using=using):
            return _append_in_transaction(pending, using)
    with connection.cursor() as cursor:
        plan = _try_fast(
            cursor,
            connection,
            [pending],
            using,
            begin="SAVEPOINT audit_append",
            end="RELEASE SAVEPOINT audit_append",
            undo="ROLLBACK TO SAVEPOINT audit_append; RELEASE SAVEPOINT audit_append",
        )
        if plan is None:
            # A savepoint: a refusal (rolled-back log, bad row) leaves the caller's
            # transaction usable.
            with transaction.atomic(using=using):
                plan = _append_locked(cursor, connection, [pending], using)
    for note, size, root_hash in plan.checkpoints:
        _export_on_commit(note, size, root_hash, using)
    head = plan.head
    transaction.on_commit(lambda: _heads.remember(using, head), using=using)
    _heads.remember_in_transaction(connection, head)
    event = plan.events[0]
    if event_appended.has_listeners():
        transaction.on_commit(
            lambda: event_appended.send(sender=AuditEvent, event=event), using=using, robust=True
        )
    return event


def _try_fast(cursor, connection, pendings, using, *, begin, end, undo) -> _Plan | None:
    """Append in one round trip from the head this process last committed, or return None.

    PostgreSQL only. `audit_expect_head` locks the head row and raises if another
    writer moved it, so the writes behind it never land on a stale head. None sends the
    caller to `_append_locked` (lock, read the head, write), which also handles rows
    planted beyond the head.
    """
    if connection.vendor != "postgresql":
        return None
    head = _heads.in_transaction(connection) or _heads.get(using)
    if head is None:
        return None
    try:
        rollback.check(head.size, hash_reader(using))
    except rollback.LogRolledBack:
        _heads.forget(using)
        return None  # perhaps only a stale cached head: the locked path decides
    plan = _plan(connection, head, pendings)
    sql = (
        f"{begin}; SELECT audit_expect_head(%s, %s, %s); " + "; ".join(plan.statements) + f"; {end}"
    )
    try:
        cursor.execute(sql, [head.size, head.root_hash, head.checkpoint_size, *plan.params])
    except DatabaseError as exc:
        cursor.execute(undo)
        _heads.forget(using)
        state = getattr(exc.__cause__, "sqlstate", None)
        if state != HEAD_MOVED and not isinstance(exc, IntegrityError):
            logger.warning("audit append: one-round-trip write failed (%s); locking the head", exc)
        return None
    return plan


def _append_locked(cursor, connection, pendings, using) -> _Plan:
    """Lock and read the head, check it against the exported checkpoints, write."""
    head = _lock_head(cursor, connection.vendor)
    rollback.check(head.size, hash_reader(using))  # refuse to fork a restored log
    plan = _plan(connection, head, pendings)
    _execute_writes(cursor, connection, head, plan.statements, plan.params)
    return plan


def _plan(connection, head: Head, pendings: Sequence[_Pending]) -> _Plan:
    """The rows that append `pendings` to `head` in order, and the head they leave."""
    now = timezone.now()
    if head.last_time is not None and now < head.last_time:
        now = head.last_time  # times never go backwards along the log
    db_now = connection.ops.adapt_datetimefield_value(now)
    time_text = format_time(now)
    frontier = tlog.Frontier.from_bytes(head.size, head.frontier)
    checkpoint_size, checkpoint_at = head.checkpoint_size, head.checkpoint_at
    event_params, subject_params, node_params, events = [], [], [], []
    checkpoints, checkpoint_sql = [], []
    for pending in pendings:
        seq = frontier.size
        entry = _compose_entry(
            seq,
            time_text,
            pending.action,
            pending.actor_name,
            pending.actor_id,
            pending.subject,
            pending.request_id,
            pending.payload_text or canonical_text(pending.payload),
            pending.subjects,
        )
        leaf_hash = tlog.hash_leaf(entry.encode("utf-8"))
        # The leaf hash is also kept with the tree (level 0): an entry rewritten together
        # with its `leaf_hash` column is then still located by index (`audit verify`).
        for (level, index), value in [((0, seq), leaf_hash), *frontier.append(leaf_hash)]:
            node_params += [TreeNode.key_for(level, index), value]
        event_params += [
            seq,
            db_now,
            pending.actor_id,
            pending.actor_name,
            pending.action,
            pending.subject,
            pending.request_id,
            entry,
            leaf_hash,
        ]
        for value in pending.subjects:
            subject_params += [value, seq]
        if _checkpoint_due(frontier.size, now, checkpoint_size, checkpoint_at):
            sql, sql_params, note = _checkpoint_insert(
                connection, frontier.size, frontier.root(), now
            )
            checkpoint_sql.append((sql, sql_params))
            checkpoints.append((note, frontier.size, sql_params[1]))
            checkpoint_size, checkpoint_at = frontier.size, now
        events.append(_event_object(pending, seq, now, entry, leaf_hash, connection.alias))
    statements = [
        "INSERT INTO audit_event (seq, created_at, actor_id, actor_name, action, subject, "
        "request_id, entry, leaf_hash) VALUES "
        + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(events))
    ]
    params = event_params
    if subject_params:
        statements.append(
            "INSERT INTO audit_event_subject (subject, seq) VALUES "
            + ", ".join(["(%s, %s)"] * (len(subject_params) // 2))
        )
        params += subject_params
    statements.append(
        "INSERT INTO audit_treenode (key, hash) VALUES "
        + ", ".join(["(%s, %s)"] * (len(node_params) // 2))
    )
    params += node_params
    for sql, sql_params in checkpoint_sql:
        statements.append(sql)
        params += sql_params
    root_hash = frontier.root()
    statements.append(
        "UPDATE audit_loghead SET size = %s, frontier = %s, root_hash = %s, last_time = %s, "
        "checkpoint_size = %s, checkpoint_at = %s WHERE id = 1"
    )
    params += [
        frontier.size,
        frontier.to_bytes(),
        root_hash,
        db_now,
        checkpoint_size,
        connection.ops.adapt_datetimefield_value(checkpoint_at),
    ]
    new_head = Head(
        frontier.size, frontier.to_bytes(), root_hash, now, checkpoint_size, checkpoint_at
    )
    return _Plan(events, statements, params, checkpoints, new_head)


def _event_object(pending: _Pending, seq, now, entry, leaf_hash, using) -> AuditEvent:
    event = AuditEvent(
        seq=seq,
        created_at=now,
        actor_id=pending.actor_id,
        actor_name=pending.actor_name,
        action=pending.action,
        subject=pending.subject,
        request_id=pending.request_id,
        entry=entry,
        leaf_hash=leaf_hash,
    )
    event._state.adding = False
    event._state.db = using
    if pending.actor is not None:
        event.actor = pending.actor
    return event


def _checkpoint_due(
    size: int, now: dt.datetime, checkpoint_size: int, checkpoint_at: dt.datetime | None
) -> bool:
    if size - checkpoint_size >= settings.AUDIT_CHECKPOINT_EVERY:
        return True
    if checkpoint_at is None:
        return True  # the first event after installation is checkpointed at once
    return (now - checkpoint_at).total_seconds() >= settings.AUDIT_CHECKPOINT_SECONDS


# --- group commit -------------------------------------------------------------------------


class _HeadCache:
    """The head as this process last committed or read it, per database alias.

    Only a guess: `audit_expect_head` checks it under the row lock before any write.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._heads: dict[str, Head] = {}

    def get(self, using: str) -> Head | None:
        with self._lock:
            return self._heads.get(using)

    def remember(self, using: str, head: Head) -> None:
        with self._lock:
            known = self._heads.get(using)
            if known is None or head.size >= known.size:
                self._heads[using] = head

    def forget(self, using: str) -> None:
        with self._lock:
            self._heads.pop(using, None)

    # A second append in the same transaction (a job's `submitted` then `queued`) starts
    # from the head the first one left, not from the last committed head: that one is
    # stale by then, and the guess would cost a refused round trip plus the locked path.
    # The guess is tied to the transaction's list of on-commit hooks, which Django
    # replaces on commit, rollback and savepoint rollback, so it never outlives the
    # writes it describes (and audit_expect_head checks it under the lock anyway).

    @staticmethod
    def remember_in_transaction(connection, head: Head) -> None:
        connection.audit_head_in_transaction = (connection.run_on_commit, head)

    @staticmethod
    def in_transaction(connection) -> Head | None:
        hooks, head = getattr(connection, "audit_head_in_transaction", (None, None))
        if connection.in_atomic_block and hooks is connection.run_on_commit:
            return head
        return None


_heads = _HeadCache()
_leading = threading.local()  # set while this thread commits a group (re-entrant appends)


class _Request:
    __slots__ = ("pending", "event", "error", "done")

    def __init__(self, pending: _Pending):
        self.pending = pending
        self.event: AuditEvent | None = None
        self.error: BaseException | None = None
        self.done = False


class _Group:
    """Group commit for appends made outside a transaction, per process and database.

    The first thread to arrive commits everything queued so far in one transaction
    (one head lock, one head update, one round trip on PostgreSQL when the cached head
    is current); threads that arrive meanwhile queue and are committed by the next
    leader, which is one of them. No thread waits for a timer: a lone writer commits at
    once, and batches form exactly when appends overlap. A thread returns only after the
    transaction holding its event committed, so an acknowledged event is durable as
    far as the database's commit is; a crash before that commit loses only events whose
    callers were still waiting (and got no acknowledgement).
    """

    def __init__(self, using: str):
        self.using = using
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._leader = False
        self._last_batch = 0

    def append(self, pending: _Pending) -> AuditEvent:
        request = _Request(pending)
        with self._cond:
            self._queue.append(request)
        while True:
            with self._cond:
                while not request.done and self._leader:
                    self._cond.wait()
                if request.done:
                    break
                self._leader = True
                # The writers the last group released are building their next events: one
                # yield of the GIL (no timer) lets them queue, so groups stay large instead
                # of alternating between a lone event and the rest (issue 18).
                gather = 1 < self._last_batch and len(self._queue) < self._last_batch
            if gather:
                time.sleep(0)
            with self._cond:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                self._last_batch = len(batch)
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._leader = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.event

    def _commit(self, batch: list[_Request]) -> None:
        _leading.on = True
        try:
            batch = _filter_group(batch)
            if not batch:
                return
            try:
                events = _commit_group([r.pending for r in batch], self.using)
            except BaseException as exc:
                if len(batch) == 1 or not isinstance(exc, Exception):
                    for request in batch:
                        request.error, request.done = exc, True
                    return
                # One bad event must not fail its neighbours: commit each alone.
                for request in batch:
                    try:
                        request.event = _commit_group([request.pending], self.using)[0]
                    except Exception as single:
                        request.error = single
                    request.done = True
                return
            for request, event in zip(batch, events, strict=True):
                request.event, request.done = event, True
        finally:
            _leading.on = False


def _filter_group(batch: list[_Request]) -> list[_Request]:
    """Run the event filters once for the whole group (one lookup, not one per event);
    return the requests that passed, having failed the others with their own error."""
    try:
        filtered = _apply_filters([r.pending for r in batch])
    except BaseException as exc:
        if len(batch) == 1 or not isinstance(exc, Exception):
            for request in batch:
                request.error, request.done = exc, True
            return []
        ready = []
        for request in batch:  # one bad event must not fail its neighbours
            try:
                request.pending = _apply_filters([request.pending])[0]
                ready.append(request)
            except Exception as single:
                request.error, request.done = single, True
        return ready
    for request, pending in zip(batch, filtered, strict=True):
        request.pending = pending
    return batch


_groups: dict[str, _Group] = {}
_groups_lock = threading.Lock()


def _group(using: str) -> _Group:
    with _groups_lock:
        group = _groups.get(using)
        if group is None:
            group = _groups[using] = _Group(using)
        return group


def _commit_group(pendings: list[_Pending], using: str) -> list[AuditEvent]:
    """Append `pendings` in one transaction of their own; run what follows its commit."""
    connection = connections[using]
    with connection.cursor() as cursor:
        plan = _try_fast(
            cursor, connection, pendings, using, begin="BEGIN", end="COMMIT", undo="ROLLBACK"
        )
    if plan is None:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            plan = _append_locked(cursor, connection, pendings, using)
    _heads.remember(using, plan.head)
    for note, size, root_hash in plan.checkpoints:
        try:
            export_checkpoint(note, size, root_hash)
        except Exception:  # the periodic task re-exports what a failure kept from the file
            logger.exception("audit log: exporting checkpoint %d failed", size)
    if event_appended.has_listeners():
        for event in plan.events:
            try:
                event_appended.send(sender=AuditEvent, event=event)
            except Exception:
                logger.exception("audit log: an event_appended receiver failed (seq %d)", event.seq)
    return plan.events


def _checkpoint_insert(
    connection, size: int, root_hash: bytes, now: dt.datetime
) -> tuple[str, list, str]:
    note = sign_checkpoint(CheckpointBody(signing.origin(), size, root_hash), signing.get_signer())
    return (
        "INSERT INTO audit_checkpoint (size, root_hash, note, created_at) VALUES (%s, %s, %s, %s)",
        [size, root_hash, note, connection.ops.adapt_datetimefield_value(now)],
        note,
    )


def _export_on_commit(note: str, size: int, root_hash: bytes, using: str) -> None:
    transaction.on_commit(
        lambda: export_checkpoint(note, size, root_hash), using=using, robust=True
    )


def make_checkpoint(using: str = DEFAULT_DB_ALIAS) -> Checkpoint:
    """Sign a checkpoint of the current tree unless the latest one already covers it."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        head = _lock_head(cursor, connection.vendor)
        rollback.check(head.size, hash_reader(using))
        if (
            head.size == head.checkpoint_size
            and Checkpoint.objects.using(using).filter(size=head.size).exists()
        ):
            return Checkpoint.objects.using(using).get(size=head.size)
        now = timezone.now()
        sql, params, note = _checkpoint_insert(connection, head.size, head.root_hash, now)
        _execute_writes(
            cursor,
            connection,
            head,
            [
                sql,
                "UPDATE audit_loghead SET checkpoint_size = %s, checkpoint_at = %s WHERE id = 1",
            ],
            [*params, head.size, connection.ops.adapt_datetimefield_value(now)],
        )
        _export_on_commit(note, head.size, head.root_hash, using)
    return Checkpoint.objects.using(using).get(size=head.size)


# --- rows beyond the head ------------------------------------------------------------------


def _execute_writes(cursor, connection, head: Head, statements: list[str], params: list) -> None:
    """Run an append's writes; if a row planted beyond the head blocks them, clear it and retry.

    Rows at or beyond the head (events with seq >= size, subtrees that end past it,
    checkpoints past the head's checkpoint size) are not part of the log: only someone
    who went around this function (an INSERT out of turn, or triggers switched off by a
    superuser) can have written them. Refusing to append
    would let one such row stop every audited action, and appending elsewhere would
    break the tree's contiguity (seq is the leaf index). So the append removes them:
    the database's delete triggers allow exactly these rows to go and copy each into
    `audit_quarantine`, where `audit verify` keeps reporting it. The savepoint keeps
    the caller's transaction usable; the happy path costs no extra round trip.
    """
    try:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SAVEPOINT audit_append; "
                + "; ".join(statements)
                + "; RELEASE SAVEPOINT audit_append",
                params,
            )
        else:
            with transaction.atomic(using=connection.alias):
                _execute_each(cursor, statements, params)
        return
    except IntegrityError:
        if connection.vendor == "postgresql":
            cursor.execute("ROLLBACK TO SAVEPOINT audit_append")
        if not clear_beyond_head(cursor, head):
            raise
    if connection.vendor == "postgresql":
        cursor.execute("; ".join(statements) + "; RELEASE SAVEPOINT audit_append", params)
    else:
        _execute_each(cursor, statements, params)


def _execute_each(cursor, statements: list[str], params: list) -> None:
    offset = 0  # sqlite3 runs one statement per execute
    for statement in statements:
        count = statement.count("%s")
        cursor.execute(statement, params[offset : offset + count])
        offset += count


def beyond_head_node_ranges(size: int) -> list[tuple[int, int | None]]:
    """Key ranges [lo, hi) of `audit_treenode` rows that no tree of `size` leaves contains.

    Node (level L, index k) belongs to the tree iff (k + 1) * 2**L <= size; keys are
    L << 56 | k, so per level the strangers form one key range (hi None: unbounded).
    """
    shift = TreeNode.LEVEL_SHIFT
    top = size.bit_length() + 1
    ranges: list[tuple[int, int | None]] = [
        ((level << shift) + (size >> level), (level + 1) << shift) for level in range(top)
    ]
    ranges.append((top << shift, None))
    return ranges


def beyond_head_node_sql(size: int) -> tuple[str, list[int]]:
    clauses, params = [], []
    for lo, hi in beyond_head_node_ranges(size):
        if hi is None:
            clauses.append("key >= %s")
            params.append(lo)
        else:
            clauses.append("(key >= %s AND key < %s)")
            params += [lo, hi]
    return " OR ".join(clauses), params


def clear_beyond_head(cursor, head: Head) -> int:
    """Move every row beyond the head into `audit_quarantine` (by its delete triggers)."""
    cursor.execute("DELETE FROM audit_event WHERE seq >= %s", [head.size])
    moved = max(cursor.rowcount, 0)
    where, params = beyond_head_node_sql(head.size)
    cursor.execute(f"DELETE FROM audit_treenode WHERE {where}", params)
    moved += max(cursor.rowcount, 0)
    cursor.execute("DELETE FROM audit_checkpoint WHERE size > %s", [head.checkpoint_size])
    moved += max(cursor.rowcount, 0)
    if moved:
        logger.error(
            "audit log: %d rows beyond the head (size %d) were written around the append-only "
            "triggers; moved to audit_quarantine so appends continue",
            moved,
            head.size,
        )
    return moved


def latest_checkpoint(using: str = DEFAULT_DB_ALIAS) -> Checkpoint | None:
    return Checkpoint.objects.using(using).order_by("-size").first()


# --- the export outside the database ----------------------------------------------------


def export_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR) / EXPORT_FILE


def export_checkpoint(note: str, size: int, root_hash: bytes) -> None:
    """Append a signed checkpoint to the export file (O_APPEND, locked, fsynced)."""
    path = export_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (
        json.dumps(
            {"size": size, "root_hash": base64.b64encode(root_hash).decode(), "note": note},
            sort_keys=True,
        )
        + "\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_exported(path: Path | None = None) -> list[dict]:
    """The exported checkpoints, in file order. Unparseable lines are reported as such."""
    path = path or export_path()
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("note"), str):
                    raise ValueError
            except ValueError:
                record = {"invalid": f"{path.name} line {number} is not a checkpoint record"}
            record["line"] = number
            records.append(record)
    return records


def sync_export(using: str = DEFAULT_DB_ALIAS) -> int:
    """Export database checkpoints that the file lacks (e.g. after a crash); return how many."""
    exported = {record.get("size") for record in read_exported()}
    missing = Checkpoint.objects.using(using).exclude(
        size__in=[s for s in exported if isinstance(s, int)]
    )
    count = 0
    for checkpoint in missing.order_by("size"):
        export_checkpoint(checkpoint.note, checkpoint.size, bytes(checkpoint.root_hash))
        count += 1
    return count


# --- reading stored hashes (a tlog.HashReader) ------------------------------------------


def hash_reader(using: str = DEFAULT_DB_ALIAS):
    def read(nodes: Sequence[tlog.Node]) -> list[bytes]:
        leaves = sorted({index for level, index in nodes if level == 0})
        keys = sorted({TreeNode.key_for(level, index) for level, index in nodes if level > 0})
        found: dict[tuple[int, int], bytes] = {}
        with connections[using].cursor() as cursor:
            for start in range(0, len(leaves), 500):
                chunk = leaves[start : start + 500]
                cursor.execute(
                    "SELECT seq, leaf_hash FROM audit_event "
                    f"WHERE seq IN ({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
                found.update({(0, int(seq)): bytes(value) for seq, value in cursor.fetchall()})
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                cursor.execute(
                    "SELECT key, hash FROM audit_treenode "
                    f"WHERE key IN ({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
                for key, value in cursor.fetchall():
                    found[
                        (
                            int(key) >> TreeNode.LEVEL_SHIFT,
                            int(key) & ((1 << TreeNode.LEVEL_SHIFT) - 1),
                        )
                    ] = bytes(value)
        missing = [node for node in nodes if node not in found]
        if missing:
            level, index = missing[0]
            raise TreeError(f"stored tree hash missing: level {level}, index {index}")
        return [found[node] for node in nodes]

    return read


def inclusion_proof(seq: int, size: int, using: str = DEFAULT_DB_ALIAS) -> list[bytes]:
    return tlog.prove_inclusion(seq, size, hash_reader(using))


def consistency_proof(old_size: int, new_size: int, using: str = DEFAULT_DB_ALIAS) -> list[bytes]:
    return tlog.prove_consistency(old_size, new_size, hash_reader(using))
