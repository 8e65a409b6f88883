"""Trusted checkpoints: the verifier's own memory of the log, kept outside its database.

A verifier that only compares the database with itself (or with a checkpoint the
server signs on request) proves nothing against whoever controls the server: a
rewritten or rolled-back database is consistent with itself. Trust therefore comes
from a signed checkpoint the verifier obtained earlier and kept *on its own side*:

- a file given on the command line (`--trusted-checkpoint FILE`): a signed note as
  printed by `manage.py audit checkpoint`, or lines of `checkpoints.jsonl` copied to
  a second host, or a JSON state file;
- the verifier's state file (`--state FILE`, e.g. `~/.styleledger-verifier`): the
  newest checkpoint it verified last time, advanced after every successful run.

No Django imports: the offline verifier (`python -m audit.verify_export`) uses this.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from audit.checkpoint import Checkpoint, CheckpointError, Verifier, open_checkpoint


class TrustError(CheckpointError):
    """A trusted checkpoint file is unreadable, malformed, or not signed by the log's key."""


def read_notes(path: str | os.PathLike) -> list[str]:
    """The signed notes in a trusted-checkpoint or state file (one or more)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustError(f"cannot read trusted checkpoint {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TrustError(f"trusted checkpoint {path} is not UTF-8") from None
    if not text.lstrip().startswith("{"):
        if not text.strip():
            raise TrustError(f"trusted checkpoint {path} is empty")
        return [text if text.endswith("\n") else text + "\n"]
    notes = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == 1:  # a pretty-printed JSON state file
                try:
                    record = json.loads(text)
                except ValueError:
                    raise TrustError(f"{path} line {number} is not JSON") from None
                notes.append(_note_of(record, path, number))
                break
            raise TrustError(f"{path} line {number} is not JSON") from None
        notes.append(_note_of(record, path, number))
    if not notes:
        raise TrustError(f"trusted checkpoint {path} holds no checkpoint")
    return notes


def _note_of(record, path: Path, number: int) -> str:
    if not isinstance(record, dict) or not isinstance(record.get("note"), str):
        raise TrustError(f"{path} line {number}: not a checkpoint record (no 'note')")
    return record["note"]


def open_trusted(
    notes: list[str], verifier: Verifier, origin: str | None = None
) -> list[Checkpoint]:
    """Open every note with the log's key; a note that does not verify is an error, never
    skipped."""
    opened = []
    for note in notes:
        try:
            opened.append(open_checkpoint(note, verifier, origin))
        except CheckpointError as exc:
            raise TrustError(f"trusted checkpoint does not verify: {exc}") from None
    return opened


def load_state(path: str | os.PathLike) -> list[str]:
    """The state file's checkpoint note, or nothing when the file does not exist yet."""
    if not Path(path).expanduser().exists():
        return []
    return read_notes(path)


def save_state(path: str | os.PathLike, note: str, checkpoint: Checkpoint) -> None:
    """Remember `checkpoint` as the newest verified one (atomic replace, mode 0600)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        json.dumps(
            {
                "origin": checkpoint.origin,
                "size": checkpoint.size,
                "root_hash": checkpoint.text().split("\n")[2],
                "note": note,
            },
            sort_keys=True,
        )
        + "\n"
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
