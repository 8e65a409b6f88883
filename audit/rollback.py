"""The rollback guard: never append to a log that is shorter than what was witnessed.

The most common way an honest operator breaks an append-only log is restoring the
database from a backup: every event after the backup is gone, and appending on top of
the restored head would silently build a second history under the same sequence
numbers. The checkpoints exported outside the database (AUDIT_CHECKPOINT_DIR/
checkpoints.jsonl) remember how far the log had grown, so every append compares:

* the newest exported checkpoint is larger than the database head, or
* its root is not the root of the database's tree at that size

-> :class:`LogRolledBack` (HTTP 503 for users): nothing is appended until an operator
acknowledges the rollback with a reason (`manage.py audit acknowledge-rollback`),
which appends an `audit.rollback_acknowledged` event and exports a new signed
checkpoint whose note states the fork (`fork-from <size> <root>`). Checkpoints in the
file before that fork record no longer bind the guard; verifiers report them as lost
by an acknowledged fork (see audit/verify.py).

Cost on the hot path: one os.stat per append. The file is re-read and the root at its
size recomputed from stored subtree hashes (O(log n) rows) only when its inode, size
or mtime changes (the log is append-only, so a root that matched once keeps matching).
A missing file disables the guard (fresh install; the verifier's own witnessed copies
off the machine are the defence against someone who deletes it).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from audit import tlog
from editplatform.core.errors import DomainError

FORK_EXTENSION = "fork-from"


class LogRolledBack(DomainError):
    """The database's log is behind (or beside) a checkpoint already exported: refuse to append."""

    def __init__(self, message: str, *, head_size: int, witnessed_size: int):
        super().__init__(message, code="audit_log_rolled_back", status=503)
        self.head_size = head_size
        self.witnessed_size = witnessed_size


@dataclass(frozen=True)
class Witnessed:
    """The newest exported checkpoint that binds the guard (after the last acknowledged fork)."""

    size: int
    root_hash: bytes
    line: int


_cache_lock = threading.Lock()
_cache: dict[str, tuple] = {}  # export path -> (stat key, Witnessed | None, verified root ok)


def fork_of(note: str) -> tuple[int, bytes] | None:
    """(size, root) of the abandoned history a checkpoint note declares, if it is a fork note."""
    text = note.split("\n\n", 1)[0]
    for line in text.split("\n")[3:]:
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == FORK_EXTENSION and parts[1].isdigit():
            try:
                return int(parts[1]), base64.b64decode(parts[2], validate=True)
            except ValueError:
                return None
    return None


def witnessed(path: Path) -> Witnessed | None:
    """The largest checkpoint in the export file at or after the last fork record."""
    best: Witnessed | None = None
    try:
        handle = path.open(encoding="utf-8")
    except OSError:
        return None
    with handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
                size, root = int(record["size"]), base64.b64decode(record["root_hash"])
            except (ValueError, KeyError, TypeError):
                continue  # `audit verify` reports malformed lines; the guard needs sizes
            if isinstance(record.get("note"), str) and fork_of(record["note"]) is not None:
                best = None  # everything before an acknowledged fork is superseded
            if best is None or size >= best.size:
                best = Witnessed(size, root, number)
    return best


def _stat_key(path: Path | str):
    try:
        st = os.stat(path)
    except OSError:  # missing, or its folder replaced/unreadable: the export is down, not the log
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def check(head_size: int, hash_reader, path: Path | None = None) -> None:
    """Raise LogRolledBack if appending on top of a log of `head_size` would fork it."""
    if bypassed() or not getattr(settings, "AUDIT_ROLLBACK_GUARD", True):
        return
    # A plain string on the hot path (one per append): pathlib costs as much as the stat.
    name = str(path) if path else os.path.join(settings.AUDIT_CHECKPOINT_DIR, "checkpoints.jsonl")
    key = _stat_key(name)
    if key is None:
        return
    with _cache_lock:
        cached = _cache.get(name)
    if cached is not None and cached[0] == key and cached[2]:
        seen = cached[1]
        if seen is None or seen.size <= head_size:
            return  # unchanged file, root already verified, not ahead of this head
    path = Path(name)
    if cached is None or cached[0] != key:
        cached = (key, witnessed(path), False)
    seen: Witnessed | None = cached[1]
    if seen is None:
        return
    if seen.size > head_size:
        raise LogRolledBack(
            f"the audit log was rolled back: the database holds {head_size} events but checkpoint "
            f"{seen.size} was already exported ({path}, line {seen.line}); events "
            f"{head_size}..{seen.size - 1} are missing. Nothing is recorded until an operator "
            "runs `manage.py audit acknowledge-rollback --reason ...`",
            head_size=head_size,
            witnessed_size=seen.size,
        )
    if not cached[2]:
        try:
            root = tlog.tree_hash(seen.size, hash_reader)
        except Exception as exc:  # a missing stored subtree is as bad as a wrong one
            root = f"unreadable: {exc}"
        if root != seen.root_hash:
            raise LogRolledBack(
                f"the audit log forked: the database's tree at size {seen.size} does not have the "
                f"root of the checkpoint exported at {path} line {seen.line} (the database was "
                "restored and written to, or replaced). Nothing is recorded until an operator "
                "runs `manage.py audit acknowledge-rollback --reason ...`",
                head_size=head_size,
                witnessed_size=seen.size,
            )
        cached = (key, seen, True)
    with _cache_lock:
        _cache[name] = cached


def reset_cache() -> None:
    with _cache_lock:
        _cache.clear()


def export_fork(note: str, size: int, root_hash: bytes, fork: dict) -> None:
    """Append the fork checkpoint to the export file (synchronously: it lifts the guard)."""
    import fcntl

    path = Path(settings.AUDIT_CHECKPOINT_DIR) / "checkpoints.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (
        json.dumps(
            {
                "size": size,
                "root_hash": base64.b64encode(root_hash).decode(),
                "note": note,
                "fork": fork,
            },
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


_bypass = threading.local()


class acknowledging:  # noqa: N801 - used as `with acknowledging():`
    """Lift the guard for this thread: only the acknowledgement's own append goes through."""

    def __enter__(self):
        _bypass.on = True

    def __exit__(self, *exc):
        _bypass.on = False


def bypassed() -> bool:
    return getattr(_bypass, "on", False)


class NothingToAcknowledge(DomainError):
    def __init__(self, message: str):
        super().__init__(message, code="audit_no_rollback", status=409)


def acknowledge(reason: str, operator: str) -> dict:
    """Record a rollback the guard refused to write past, and sign the fork; return its facts.

    One transaction appends `audit.rollback_acknowledged` (lost index range, the witnessed
    checkpoint, the reason, who); then a checkpoint of the new head is signed with the
    extension line ``fork-from <witnessed size> <witnessed root>`` and exported, which
    lifts the guard for every process (they re-read the changed file).
    """
    from django.db import transaction

    from audit import actions, signing
    from audit import log as audit_log
    from audit.checkpoint import Checkpoint, sign_checkpoint

    reason = reason.strip()
    if len(reason) < 10:
        raise DomainError(
            "give the reason for the rollback in a sentence (--reason, 10 characters or more)",
            code="audit_reason_required",
            field="reason",
        )
    path = audit_log.export_path()
    reset_cache()
    head = audit_log.read_head()
    try:
        check(head.size, audit_log.hash_reader(), path)
    except LogRolledBack as exc:
        refused = exc
    else:
        raise NothingToAcknowledge(
            f"the log (size {head.size}) extends every exported checkpoint in {path}: "
            "there is no rollback to acknowledge"
        )
    seen = witnessed(path)
    lost = [head.size, seen.size - 1] if seen.size > head.size else None
    payload = {
        "reason": reason,
        "head_size": head.size,
        "head_root": base64.b64encode(head.root_hash).decode(),
        "witnessed_size": seen.size,
        "witnessed_root": base64.b64encode(seen.root_hash).decode(),
        "lost_events": lost,
        "detail": refused.message,
    }
    with acknowledging(), transaction.atomic():
        event = audit_log.append_event(
            actions.AUDIT_ROLLBACK_ACKNOWLEDGED, actor_name=operator, payload=payload
        )
    new_head = audit_log.read_head()
    extension = f"{FORK_EXTENSION} {seen.size} {base64.b64encode(seen.root_hash).decode()}"
    note = sign_checkpoint(
        Checkpoint(signing.origin(), new_head.size, new_head.root_hash, (extension,)),
        signing.get_signer(),
    )
    fork = {"at": event.seq, "from_size": seen.size, "lost_events": lost, "reason": reason}
    export_fork(note, new_head.size, new_head.root_hash, fork)
    reset_cache()
    return {**payload, "event_seq": event.seq, "checkpoint_size": new_head.size, "note": note}
