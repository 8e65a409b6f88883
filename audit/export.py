"""Exports of the audit log with inclusion proofs and the signed checkpoint they prove against.

Format `styleledger-audit-export/1`, as JSON lines (`jsonl`) or CSV (`csv`):

- first record: the checkpoint (origin, tree size, root hash, the signed note);
- then one record per event: its sequence number, the canonical entry exactly as
  hashed, the leaf hash (hex) and the inclusion proof (base64 hashes, leaf level
  first) for the checkpoint's tree size.

CSV rows also carry the entry's fields in their own columns for reading in a
spreadsheet; the offline verifier checks that they agree with the entry. Anyone
holding the log's public key can check an export with `python -m audit.verify_export`,
without the database.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections

from audit import log as audit_log
from audit import subjects, tlog
from audit.canonical import canonical_text

FORMAT = "styleledger-audit-export/1"
FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ["record", "seq", "time", "actor", "action", "subject", "request_id", "payload", "entry",
               "leaf_hash", "inclusion_proof"]
_BATCH = 500


class CachingReader:
    """A HashReader that prefetches the nodes a batch of proofs will need."""

    def __init__(self, using: str):
        self.base = audit_log.hash_reader(using)
        self.cache: dict[tlog.Node, bytes] = {}

    def prefetch(self, nodes) -> None:
        missing = sorted(set(nodes) - self.cache.keys())
        if missing:
            self.cache.update(zip(missing, self.base(missing), strict=True))

    def __call__(self, nodes):
        self.prefetch(nodes)
        return [self.cache[node] for node in nodes]


def _event_rows(filters: dict, size: int, using: str) -> Iterator[tuple[int, str, bytes]]:
    where, params = ["seq < %s"], [size]
    if filters.get("since") is not None:
        where.append("created_at >= %s")
        params.append(connections[using].ops.adapt_datetimefield_value(filters["since"]))
    if filters.get("until") is not None:
        where.append("created_at < %s")
        params.append(connections[using].ops.adapt_datetimefield_value(filters["until"]))
    if filters.get("since_seq") is not None:
        where.append("seq >= %s")
        params.append(int(filters["since_seq"]))
    if filters.get("subject"):  # main or extra subject; a bare id/hash matches its prefixed forms
        names = subjects.expand(filters["subject"])
        marks = ", ".join(["%s"] * len(names))
        where.append(f"(subject IN ({marks}) OR seq IN (SELECT seq FROM audit_event_subject WHERE subject IN ({marks})))")
        params.extend(names + names)
    for column in ("action", "actor_name"):
        if filters.get(column):
            where.append(f"{column} = %s")
            params.append(filters[column])
    with connections[using].chunked_cursor() as cursor:
        cursor.execute(f"SELECT seq, entry, leaf_hash FROM audit_event WHERE {' AND '.join(where)} ORDER BY seq", params)
        while rows := cursor.fetchmany(_BATCH):
            yield from ((int(seq), entry, bytes(leaf)) for seq, entry, leaf in rows)


def iter_export(*, fmt: str = "jsonl", using: str = DEFAULT_DB_ALIAS, since: dt.datetime | None = None,
                until: dt.datetime | None = None, since_seq: int | None = None, subject: str = "",
                action: str = "", actor: str = "") -> Iterator[str]:
    """Yield the export's text in chunks (for a file or a streaming HTTP response)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (use {' or '.join(FORMATS)})")
    checkpoint = audit_log.make_checkpoint(using)
    size, root_hash = checkpoint.size, bytes(checkpoint.root_hash)
    filters = {"since": since, "until": until, "since_seq": since_seq, "subject": subject, "action": action,
               "actor_name": actor}
    reader = CachingReader(using)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    head = {"type": "checkpoint", "format": FORMAT, "origin": audit_log.signing.origin(), "size": size,
            "root_hash": base64.b64encode(root_hash).decode(), "note": checkpoint.note}
    if writer:
        writer.writerow(CSV_COLUMNS)
        writer.writerow(["checkpoint", size, "", "", "", "", "", "", checkpoint.note, root_hash.hex(), FORMAT])
    else:
        buffer.write(json.dumps(head, sort_keys=True) + "\n")
    yield flush()

    batch: list[tuple[int, str, bytes]] = []

    def emit(rows) -> str:
        reader.cache.clear()
        reader.prefetch(node for seq, _, _ in rows for node in tlog.inclusion_nodes(seq, size))
        for seq, entry, leaf in rows:
            proof = [base64.b64encode(h).decode() for h in tlog.prove_inclusion(seq, size, reader)]
            if writer:
                data = json.loads(entry)
                writer.writerow(["event", seq, data.get("time", ""), data.get("actor", ""), data.get("action", ""),
                                 data.get("subject", ""), data.get("request_id", ""),
                                 canonical_text(data.get("payload", {})), entry, leaf.hex(), " ".join(proof)])
            else:
                buffer.write(json.dumps({"type": "event", "seq": seq, "entry": entry, "leaf_hash": leaf.hex(),
                                         "inclusion_proof": proof}, ensure_ascii=False) + "\n")
        return flush()

    for row in _event_rows(filters, size, using):
        batch.append(row)
        if len(batch) >= _BATCH:
            yield emit(batch)
            batch = []
    if batch:
        yield emit(batch)
