"""Offline verifier for audit exports: no database, no Django settings.

    python -m audit.verify_export EXPORT_FILE --public-key KEY

KEY is the log's verifier key (`<origin>+<key id>+<base64 key>`, as printed by
`manage.py audit public-key`), or a file holding it, or a PEM public key file (then
the log's origin, i.e. the key name, is read from the export's checkpoint record).

Checks: the checkpoint's signature by that key; for every event, that the leaf hash
is SHA-256(0x00 || entry), that the entry is canonical JSON and sits at the index it
claims, that its inclusion proof leads to the checkpoint's root, and (CSV) that the
readable columns agree with the entry. Exit status 0 when everything verifies, 1
when anything does not (the first problem is printed), 2 for usage errors.
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
from audit.checkpoint import CheckpointError, load_verifier, open_checkpoint

FORMAT = "styleledger-audit-export/1"


class ExportError(ValueError):
    pass


@dataclass
class Report:
    origin: str = ""
    size: int = 0
    root_hash: bytes = b""
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_event(report: Report, seq, entry, leaf_hex, proof_b64, where: str) -> dict | None:
    try:
        seq = int(seq)
        leaf = bytes.fromhex(leaf_hex)
        proof = [base64.b64decode(p, validate=True) for p in proof_b64]
    except (TypeError, ValueError, binascii.Error):
        report.problems.append(f"{where}: malformed seq, leaf hash or proof")
        return None
    if not isinstance(entry, str):
        report.problems.append(f"{where}: entry is not a string")
        return None
    if tlog.hash_leaf(entry.encode("utf-8")) != leaf:
        report.problems.append(f"{where} (seq {seq}): entry does not match its leaf hash")
        return None
    if not is_canonical(entry):
        report.problems.append(f"{where} (seq {seq}): entry is not canonical JSON")
        return None
    data = json.loads(entry)
    if not isinstance(data, dict) or data.get("seq") != seq:
        report.problems.append(f"{where}: entry is for index {data.get('seq') if isinstance(data, dict) else '?'}, listed as {seq}")
        return None
    try:
        tlog.verify_inclusion(leaf, seq, report.size, proof, report.root_hash)
    except tlog.ProofError as exc:
        report.problems.append(f"{where} (seq {seq}): {exc}")
        return None
    report.events += 1
    return data


def _open_checkpoint(report: Report, note: str, key_spec: str, origin_hint: str | None) -> None:
    verifier = load_verifier(key_spec, name=origin_hint)
    checkpoint = open_checkpoint(note, verifier)
    report.origin, report.size, report.root_hash = checkpoint.origin, checkpoint.size, checkpoint.root_hash


def verify_jsonl(lines: list[str], key_spec: str) -> Report:
    report = Report()
    if not lines:
        raise ExportError("empty export")
    try:
        head = json.loads(lines[0])
    except ValueError:
        raise ExportError("first line is not JSON") from None
    if not isinstance(head, dict) or head.get("type") != "checkpoint" or head.get("format") != FORMAT:
        raise ExportError(f"first record must be the {FORMAT} checkpoint")
    _open_checkpoint(report, head.get("note", ""), key_spec, head.get("origin"))
    if head.get("size") != report.size or head.get("root_hash") != base64.b64encode(report.root_hash).decode():
        report.problems.append("checkpoint record's size/root differ from its signed note")
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except ValueError:
            report.problems.append(f"{where}: not JSON")
            continue
        if not isinstance(record, dict) or record.get("type") != "event":
            report.problems.append(f"{where}: not an event record")
            continue
        _check_event(report, record.get("seq"), record.get("entry"), record.get("leaf_hash"),
                     record.get("inclusion_proof") or [], where)
    return report


def verify_csv(text: str, key_spec: str) -> Report:
    report = Report()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) < 2 or rows[0][:2] != ["record", "seq"]:
        raise ExportError("not a styleledger CSV export (header row missing)")
    header = rows[0]
    records = [dict(zip(header, row, strict=False)) for row in rows[1:] if row]
    first = records[0]
    if first.get("record") != "checkpoint" or first.get("inclusion_proof") != FORMAT:
        raise ExportError(f"first record must be the {FORMAT} checkpoint")
    origin_hint = first["entry"].split("\n", 1)[0]
    _open_checkpoint(report, first["entry"], key_spec, origin_hint)
    if first.get("seq") != str(report.size) or first.get("leaf_hash") != report.root_hash.hex():
        report.problems.append("checkpoint row's size/root differ from its signed note")
    for number, record in enumerate(records[1:], 3):
        where = f"row {number}"
        if record.get("record") != "event":
            report.problems.append(f"{where}: not an event row")
            continue
        proof = record.get("inclusion_proof", "").split()
        data = _check_event(report, record.get("seq"), record.get("entry"), record.get("leaf_hash"), proof, where)
        if data is None:
            continue
        shown = {"time": record.get("time"), "actor": record.get("actor"), "action": record.get("action"),
                 "subject": record.get("subject"), "request_id": record.get("request_id")}
        for key, value in shown.items():
            if str(data.get(key, "")) != value:
                report.problems.append(f"{where} (seq {data['seq']}): {key} column differs from the signed entry")
        if record.get("payload") != canonical_text(data.get("payload", {})):
            report.problems.append(f"{where} (seq {data['seq']}): payload column differs from the signed entry")
    return report


def verify_file(path: str, key_spec: str) -> Report:
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError("export is not UTF-8") from None
    if text.lstrip().startswith("{"):
        return verify_jsonl(text.splitlines(), key_spec)
    return verify_csv(text, key_spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.verify_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="an export written by `manage.py audit export` or the audit-trail page")
    parser.add_argument("--public-key", required=True, help="verifier key text, or a file with it or a PEM key")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.file, args.public_key)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ExportError, CheckpointError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if not report.ok:
        print(f"FAILED: {report.problems[0]}", file=sys.stderr)
        for problem in report.problems[1:10]:
            print(f"  also: {problem}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"OK: {report.events} events verified against the signed checkpoint of {report.origin} "
              f"(tree size {report.size}, root {base64.b64encode(report.root_hash).decode()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
