"""Exports of the audit log with inclusion proofs and the signed checkpoint they prove against.

Format `styleledger-audit-export/2`, as JSON lines (`jsonl`) or CSV (`csv`):

- first record: the checkpoint (origin, tree size, root hash, the signed note), the
  export's `start` seq, whether it is `complete` (no filter but a start seq), the
  filters, and `consistency`: for each trusted tree size the exporter was given,
  the consistency proof from that size to this checkpoint;
- then, in seq order, one record per event: its sequence number, the canonical
  entry exactly as hashed, the leaf hash (hex) and the inclusion proof (base64
  hashes, leaf level first) for the checkpoint's tree size; and one `gap` record per
  run of events left out (before `start`, or filtered out): the hashes of the
  complete subtrees covering that run.

Events and gaps cover [0, tree size) exactly once, so the offline verifier rebuilds
the signed root from them: a removed, repeated or reordered line fails, and the
missing index is named. The export does not certify itself: the verifier holds a
checkpoint it trusts from elsewhere and checks the consistency proof from it.

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

FORMAT = "styleledger-audit-export/2"
FORMATS = ("jsonl", "csv")
CSV_COLUMNS = [
    "record",
    "seq",
    "time",
    "actor",
    "action",
    "subject",
    "request_id",
    "payload",
    "entry",
    "leaf_hash",
    "inclusion_proof",
]
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
        names = subjects.expand_with_aliases(filters["subject"])
        marks = ", ".join(["%s"] * len(names))
        where.append(
            f"(subject IN ({marks}) OR seq IN "
            f"(SELECT seq FROM audit_event_subject WHERE subject IN ({marks})))"
        )
        params.extend(names + names)
    for column in ("action", "actor_name"):
        if filters.get(column):
            where.append(f"{column} = %s")
            params.append(filters[column])
    with connections[using].chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT seq, entry, leaf_hash FROM audit_event WHERE {' AND '.join(where)} ORDER BY "
            "seq",
            params,
        )
        while rows := cursor.fetchmany(_BATCH):
            yield from ((int(seq), entry, bytes(leaf)) for seq, entry, leaf in rows)


class ExportError(ValueError):
    """The export cannot be made as asked (e.g. a trusted size the log does not extend)."""


def _consistency(trusted_sizes, size: int, root_hash: bytes, reader) -> list[dict]:
    out = []
    for old in sorted(set(trusted_sizes or ())):
        if not 0 <= old <= size:
            raise ExportError(
                f"trusted size {old} is larger than the log's checkpoint ({size} events): "
                "the log was rolled back, or the size is wrong"
            )
        proof = tlog.prove_consistency(old, size, reader)
        old_root = tlog.tree_hash(old, reader)
        tlog.verify_consistency(old, size, old_root, root_hash, proof)
        out.append(
            {
                "from_size": old,
                "from_root": base64.b64encode(old_root).decode(),
                "proof": [base64.b64encode(h).decode() for h in proof],
            }
        )
    return out


def _witnessed_size(size: int) -> list[int]:
    """The newest checkpoint in the export file that this tree can extend (none if none)."""
    sizes = [
        r["size"]
        for r in audit_log.read_exported()
        if isinstance(r.get("size"), int) and 0 < r["size"] <= size
    ]
    return [max(sizes)] if sizes else []


def iter_export(
    *,
    fmt: str = "jsonl",
    using: str = DEFAULT_DB_ALIAS,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    since_seq: int | None = None,
    subject: str = "",
    action: str = "",
    actor: str = "",
    trusted_sizes: list[int] | None = None,
    trusted_roots: dict[int, bytes] | None = None,
) -> Iterator[str]:
    """Yield the export's text in chunks (for a file or a streaming HTTP response).

    `trusted_sizes`: tree sizes the recipient already trusts; the export carries a
    consistency proof from each (None, with no `trusted_roots` either: from the newest
    checkpoint already exported off the database, what witnesses last saw).
    `trusted_roots` (size -> root, from a trusted checkpoint): refuse to export a tree
    that does not extend it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (use {' or '.join(FORMATS)})")
    checkpoint = audit_log.make_checkpoint(using)
    size, root_hash = checkpoint.size, bytes(checkpoint.root_hash)
    filters = {
        "since": since,
        "until": until,
        "since_seq": since_seq,
        "subject": subject,
        "action": action,
        "actor_name": actor,
    }
    reader = CachingReader(using)
    for old, old_root in (trusted_roots or {}).items():
        if old > size or tlog.tree_hash(old, reader) != old_root:
            raise ExportError(
                f"this database does not extend the trusted checkpoint of size {old}: "
                "it was rewritten or rolled back"
            )
    if trusted_sizes is None and not trusted_roots:
        trusted_sizes = _witnessed_size(size)
    consistency = _consistency(
        [*(trusted_sizes or ()), *(trusted_roots or {})], size, root_hash, reader
    )
    start = max(int(since_seq or 0), 0)
    complete = not any(filters[k] for k in ("since", "until", "subject", "action", "actor_name"))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    shown_filters = {
        k: (v.isoformat() if isinstance(v, dt.datetime) else v)
        for k, v in filters.items()
        if v not in (None, "")
    }
    meta = {
        "start": start,
        "complete": complete,
        "filters": shown_filters,
        "consistency": consistency,
    }
    head = {
        "type": "checkpoint",
        "format": FORMAT,
        "origin": audit_log.signing.origin(),
        "size": size,
        "root_hash": base64.b64encode(root_hash).decode(),
        "note": checkpoint.note,
        **meta,
    }
    if writer:
        writer.writerow(CSV_COLUMNS)
        writer.writerow(
            [
                "checkpoint",
                size,
                "",
                "",
                "",
                "",
                "",
                canonical_text(meta),
                checkpoint.note,
                root_hash.hex(),
                FORMAT,
            ]
        )
    else:
        buffer.write(json.dumps(head, sort_keys=True) + "\n")
    yield flush()

    batch: list[tuple[int, str, bytes]] = []
    position = 0  # the next seq the export must account for

    def gap(lo: int, hi: int) -> None:
        if lo >= hi:
            return
        hashes = [base64.b64encode(h).decode() for h in reader(tlog.subtree_nodes(lo, hi))]
        if writer:
            writer.writerow(["gap", lo, "", "", "", "", "", "", hi, " ".join(hashes), ""])
        else:
            buffer.write(json.dumps({"type": "gap", "from": lo, "to": hi, "hashes": hashes}) + "\n")

    def emit(rows) -> str:
        nonlocal position
        reader.cache.clear()
        wanted, previous = [], position
        for seq, _, _ in rows:
            wanted += tlog.inclusion_nodes(seq, size)
            if previous < seq:
                wanted += tlog.subtree_nodes(previous, seq)
            previous = seq + 1
        reader.prefetch(wanted)
        for seq, entry, leaf in rows:
            gap(position, seq)
            position = seq + 1
            proof = [base64.b64encode(h).decode() for h in tlog.prove_inclusion(seq, size, reader)]
            if writer:
                data = json.loads(entry)
                writer.writerow(
                    [
                        "event",
                        seq,
                        data.get("time", ""),
                        data.get("actor", ""),
                        data.get("action", ""),
                        data.get("subject", ""),
                        data.get("request_id", ""),
                        canonical_text(data.get("payload", {})),
                        entry,
                        leaf.hex(),
                        " ".join(proof),
                    ]
                )
            else:
                buffer.write(
                    json.dumps(
                        {
                            "type": "event",
                            "seq": seq,
                            "entry": entry,
                            "leaf_hash": leaf.hex(),
                            "inclusion_proof": proof,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        return flush()

    for row in _event_rows(filters, size, using):
        batch.append(row)
        if len(batch) >= _BATCH:
            yield emit(batch)
            batch = []
    if batch:
        yield emit(batch)
    gap(position, size)
    yield flush()
