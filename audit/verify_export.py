"""Offline verifier for audit exports: no database, no Django settings.

    python -m audit.verify_export EXPORT_FILE --public-key KEY
        [--trusted-checkpoint FILE ...] [--state ~/.styleledger-verifier]

KEY is the log's verifier key (`<origin>+<key id>+<base64 key>`, as printed by
`manage.py audit public-key`), or a file holding it, or a PEM public key file (then
the log's origin, i.e. the key name, is read from the export's checkpoint record).

Checks: the checkpoint's signature by that key; for every event, that the leaf hash
is SHA-256(0x00 || entry), that the entry is canonical JSON and sits at the index it
claims, that its inclusion proof leads to the checkpoint's root, and (CSV) that the
readable columns agree with the entry; completeness: events and gap records cover
every index from 0 to the tree size exactly once and rebuild the signed root (a
removed line is named by its index; an export that says it is complete may not
leave events out); and trust from outside: the export's checkpoint is consistent
with every trusted checkpoint (a file you kept, or the state file, which is then
advanced to the export's checkpoint). Exit status 0 when everything verifies, 1 when
anything does not (the first problem is printed), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import io
import json
import sys
from dataclasses import dataclass, field

from audit import tlog
from audit.canonical import canonical_text, is_canonical
from audit.checkpoint import Checkpoint, CheckpointError, load_verifier, open_checkpoint
from audit.trust import load_state, open_trusted, read_notes, save_state

FORMAT = "styleledger-audit-export/2"
FORMAT_V1 = "styleledger-audit-export/1"


class ExportError(ValueError):
    pass


@dataclass
class Report:
    origin: str = ""
    size: int = 0
    root_hash: bytes = b""
    note: str = ""
    events: int = 0
    omitted: int = 0
    start: int = 0
    complete: bool = False
    consistency: list = field(default_factory=list)
    trusted_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    # completeness: the cover rebuilt so far
    cover: tlog.Frontier = field(default_factory=tlog.Frontier)
    cover_broken: bool = False
    roots_at: dict = field(default_factory=dict)
    checks_cover: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.origin, self.size, self.root_hash)

    def account(self, lo: int, hi: int, pieces: list[tuple[int, bytes]], where: str) -> None:
        """Add the indexes [lo, hi) (as subtrees) to the cover; name what is missing or repeated."""
        if not self.checks_cover or self.cover_broken:
            return
        position = self.cover.size
        if lo > position:
            self.problems.append(
                f"index {position}: events {position}..{lo - 1} are missing from the export "
                f"(before {where}: lines removed?)"
            )
            self.cover_broken = True
            return
        if lo < position or hi > self.size:
            self.problems.append(
                f"index {lo}: {where} repeats or reorders indexes already accounted for "
                f"(expected {position})"
                if lo < position
                else f"index {lo}: {where} reaches past the tree size {self.size}"
            )
            self.cover_broken = True
            return
        try:
            for level, value in pieces:
                self.cover.append_subtree(level, value)
        except ValueError as exc:
            self.problems.append(f"index {lo}: {where}: {exc}")
            self.cover_broken = True
            return
        if self.cover.size != hi:
            self.problems.append(f"index {lo}: {where} does not cover {lo}..{hi - 1}")
            self.cover_broken = True
            return
        self.roots_at[hi] = self.cover.root()


def _check_event(report: Report, seq, entry, leaf_hex, proof_b64, where: str) -> dict | None:
    try:
        seq = int(seq)
        leaf = bytes.fromhex(leaf_hex)
        proof = [base64.b64decode(p, validate=True) for p in proof_b64]
    except (TypeError, ValueError, binascii.Error):
        report.problems.append(f"{where}: malformed seq, leaf hash or proof")
        report.cover_broken = True
        return None
    report.account(seq, seq + 1, [(0, leaf)], f"{where} (seq {seq})")
    if not isinstance(entry, str):
        report.problems.append(f"{where}: entry is not a string")
        return None
    if tlog.hash_leaf(entry.encode("utf-8")) != leaf:
        report.problems.append(f"index {seq}: {where}: entry does not match its leaf hash")
        return None
    if not is_canonical(entry):
        report.problems.append(f"index {seq}: {where}: entry is not canonical JSON")
        return None
    data = json.loads(entry)
    if not isinstance(data, dict) or data.get("seq") != seq:
        shown = data.get("seq") if isinstance(data, dict) else "?"
        report.problems.append(f"index {seq}: {where}: entry is for index {shown}, listed as {seq}")
        return None
    try:
        tlog.verify_inclusion(leaf, seq, report.size, proof, report.root_hash)
    except tlog.ProofError as exc:
        report.problems.append(f"index {seq}: {where}: {exc}")
        return None
    report.events += 1
    return data


def _check_gap(report: Report, lo, hi, hashes, where: str) -> None:
    try:
        lo, hi = int(lo), int(hi)
        values = [base64.b64decode(h, validate=True) for h in hashes]
        nodes = tlog.subtree_nodes(lo, hi)
    except (TypeError, ValueError, binascii.Error):
        report.problems.append(f"{where}: malformed gap record")
        report.cover_broken = True
        return
    if len(values) != len(nodes) or any(len(v) != tlog.HASH_SIZE for v in values):
        report.problems.append(
            f"index {lo}: {where}: gap {lo}..{hi - 1} needs {len(nodes)} subtree hashes"
        )
        report.cover_broken = True
        return
    if report.complete and report.checks_cover and hi > report.start:
        first = max(lo, report.start)
        report.problems.append(
            f"index {first}: events {first}..{hi - 1} appear only as hashes in an export "
            "that says it is complete (event lines replaced?)"
        )
    report.omitted += hi - lo
    report.account(
        lo,
        hi,
        [(level, value) for (level, _), value in zip(nodes, values, strict=True)],
        f"{where} (gap {lo}..{hi - 1})",
    )


def _open_checkpoint(report: Report, note: str, key_spec: str, origin_hint: str | None):
    verifier = load_verifier(key_spec, name=origin_hint)
    checkpoint = open_checkpoint(note, verifier)
    report.origin, report.size, report.root_hash = (
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root_hash,
    )
    report.note = note
    report.roots_at[0] = tlog.EMPTY_ROOT
    return verifier


def _read_meta(report: Report, fmt: str, meta: dict) -> None:
    if fmt == FORMAT_V1:
        report.checks_cover = False
        report.notices.append(
            f"{FORMAT_V1} export: it carries no completeness information; removed lines "
            "cannot be detected (re-export with this version)"
        )
        return
    if not isinstance(meta, dict):
        raise ExportError("checkpoint record lacks the export's start/complete/consistency fields")
    start, complete, consistency = meta.get("start"), meta.get("complete"), meta.get("consistency")
    if (
        not isinstance(start, int)
        or not isinstance(complete, bool)
        or not isinstance(consistency, list)
    ):
        raise ExportError("checkpoint record lacks the export's start/complete/consistency fields")
    report.start, report.complete, report.consistency = start, complete, consistency


def _finish(report: Report, verifier, trusted_notes: list[str]) -> None:
    if report.checks_cover and not report.cover_broken:
        if report.cover.size < report.size:
            report.problems.append(
                f"index {report.cover.size}: events {report.cover.size}..{report.size - 1} "
                "are missing from the end of the export (lines removed?)"
            )
        elif report.cover.root() != report.root_hash:
            report.problems.append(
                "the export's events and gaps do not rebuild the signed root "
                "(a gap's hashes were altered)"
            )
    if not trusted_notes:
        report.notices.append(
            "no trusted checkpoint given: this shows the log's key signed this tree, not that "
            "it extends the log you saw before (pass --trusted-checkpoint or --state)"
        )
        return
    for trusted in open_trusted(trusted_notes, verifier, report.origin):
        _check_trusted(report, trusted)


def _check_trusted(report: Report, trusted: Checkpoint) -> None:
    size, root = report.size, report.root_hash
    if trusted.size > size:
        report.problems.append(
            f"index {size}: the export's checkpoint ({size} events) is older than your trusted "
            f"checkpoint ({trusted.size} events): the log was rolled back or events "
            f"{size}..{trusted.size - 1} deleted"
        )
        return
    if trusted.size == size:
        if trusted.root_hash != root:
            report.problems.append(
                f"the export's checkpoint and your trusted checkpoint both have {size} events "
                "but different roots: the log was rewritten (a fork)"
            )
        else:
            report.trusted_checked += 1
        return
    for item in report.consistency:
        if not isinstance(item, dict) or item.get("from_size") != trusted.size:
            continue
        try:
            proof = [base64.b64decode(p, validate=True) for p in item.get("proof", [])]
            tlog.verify_consistency(trusted.size, size, trusted.root_hash, root, proof)
        except (binascii.Error, ValueError, TypeError) as exc:
            report.problems.append(
                f"the export's checkpoint is not consistent with your trusted checkpoint of "
                f"size {trusted.size} (the log was rewritten): {exc}"
            )
            return
        report.trusted_checked += 1
        return
    if trusted.size in report.roots_at:  # a complete cover up to the trusted size: compare directly
        if report.roots_at[trusted.size] != trusted.root_hash:
            report.problems.append(
                f"the export's first {trusted.size} events differ from your trusted checkpoint "
                "of that size: the log was rewritten"
            )
        else:
            report.trusted_checked += 1
        return
    report.problems.append(
        f"the export carries no consistency proof from your trusted size {trusted.size}: "
        f"re-export with `manage.py audit export --trusted-size {trusted.size}`"
    )


def verify_jsonl(lines: list[str], key_spec: str, trusted_notes: list[str] | None = None) -> Report:
    report = Report()
    if not lines:
        raise ExportError("empty export")
    try:
        head = json.loads(lines[0])
    except ValueError:
        raise ExportError("first line is not JSON") from None
    if (
        not isinstance(head, dict)
        or head.get("type") != "checkpoint"
        or head.get("format") not in (FORMAT, FORMAT_V1)
    ):
        raise ExportError(f"first record must be the {FORMAT} checkpoint")
    verifier = _open_checkpoint(report, head.get("note", ""), key_spec, head.get("origin"))
    if (
        head.get("size") != report.size
        or head.get("root_hash") != base64.b64encode(report.root_hash).decode()
    ):
        report.problems.append("checkpoint record's size/root differ from its signed note")
    _read_meta(report, head["format"], head)
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except ValueError:
            report.problems.append(f"{where}: not JSON")
            report.cover_broken = True
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "event":
            _check_event(
                report,
                record.get("seq"),
                record.get("entry"),
                record.get("leaf_hash"),
                record.get("inclusion_proof") or [],
                where,
            )
        elif kind == "gap":
            _check_gap(
                report, record.get("from"), record.get("to"), record.get("hashes") or [], where
            )
        else:
            report.problems.append(f"{where}: not an event or gap record")
            report.cover_broken = True
    _finish(report, verifier, trusted_notes or [])
    return report


def verify_csv(text: str, key_spec: str, trusted_notes: list[str] | None = None) -> Report:
    report = Report()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) < 2 or rows[0][:2] != ["record", "seq"]:
        raise ExportError("not a styleledger CSV export (header row missing)")
    header = rows[0]
    records = [dict(zip(header, row, strict=False)) for row in rows[1:] if row]
    first = records[0]
    if first.get("record") != "checkpoint" or first.get("inclusion_proof") not in (
        FORMAT,
        FORMAT_V1,
    ):
        raise ExportError(f"first record must be the {FORMAT} checkpoint")
    origin_hint = first["entry"].split("\n", 1)[0]
    verifier = _open_checkpoint(report, first["entry"], key_spec, origin_hint)
    if first.get("seq") != str(report.size) or first.get("leaf_hash") != report.root_hash.hex():
        report.problems.append("checkpoint row's size/root differ from its signed note")
    meta = None
    if first["inclusion_proof"] == FORMAT:
        try:
            meta = json.loads(first.get("payload") or "")
        except ValueError:
            raise ExportError(
                "checkpoint row's payload column is not the export's JSON metadata"
            ) from None
    _read_meta(report, first["inclusion_proof"], meta)
    for number, record in enumerate(records[1:], 3):
        where = f"row {number}"
        if record.get("record") == "gap":
            _check_gap(
                report,
                record.get("seq"),
                record.get("entry"),
                (record.get("leaf_hash") or "").split(),
                where,
            )
            continue
        if record.get("record") != "event":
            report.problems.append(f"{where}: not an event or gap row")
            report.cover_broken = True
            continue
        proof = record.get("inclusion_proof", "").split()
        data = _check_event(
            report, record.get("seq"), record.get("entry"), record.get("leaf_hash"), proof, where
        )
        if data is None:
            continue
        shown = {
            "time": record.get("time"),
            "actor": record.get("actor"),
            "action": record.get("action"),
            "subject": record.get("subject"),
            "request_id": record.get("request_id"),
        }
        for key, value in shown.items():
            if str(data.get(key, "")) != value:
                report.problems.append(
                    f"{where} (seq {data['seq']}): {key} column differs from the signed entry"
                )
        if record.get("payload") != canonical_text(data.get("payload", {})):
            report.problems.append(
                f"{where} (seq {data['seq']}): payload column differs from the signed entry"
            )
    _finish(report, verifier, trusted_notes or [])
    return report


def verify_file(path: str, key_spec: str, trusted_notes: list[str] | None = None) -> Report:
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError("export is not UTF-8") from None
    if text.lstrip().startswith("{"):
        return verify_jsonl(text.splitlines(), key_spec, trusted_notes)
    return verify_csv(text, key_spec, trusted_notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify_export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "file", help="an export written by `manage.py audit export` or the audit-trail page"
    )
    parser.add_argument(
        "--public-key", required=True, help="verifier key text, or a file with it or a PEM key"
    )
    parser.add_argument(
        "--trusted-checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="a signed checkpoint you kept outside the log's machine (note text or "
        "checkpoints.jsonl lines); may be repeated",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="your verifier state (e.g. ~/.styleledger-verifier): its checkpoint is trusted, "
        "and it is advanced to the export's checkpoint when everything verifies",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        trusted = [note for path in args.trusted_checkpoint for note in read_notes(path)]
        if args.state:
            trusted += load_state(args.state)
        report = verify_file(args.file, args.public_key, trusted)
    except OSError as exc:
        print(f"cannot read {exc.filename or args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ExportError, CheckpointError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for notice in report.notices:
        print(f"note: {notice}", file=sys.stderr)
    if not report.ok:
        print(f"FAILED: {report.problems[0]}", file=sys.stderr)
        for problem in report.problems[1:10]:
            print(f"  also: {problem}", file=sys.stderr)
        return 1
    if args.state:
        save_state(args.state, report.note, report.checkpoint)
    if not args.quiet:
        print(
            f"OK: {report.events} events verified against the signed checkpoint of {report.origin} "
            f"(tree size {report.size}, root {base64.b64encode(report.root_hash).decode()}); "
            f"{report.omitted} left out as hashes; consistent with {report.trusted_checked} "
            "trusted checkpoint(s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
