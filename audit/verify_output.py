"""Offline verifier for a released output: no database, no Django settings.

    python -m audit.verify_output IMAGE --public-key KEY --trust-anchor ROOTS.pem [--origin ORIGIN]

Checks, in order: the image's C2PA manifest validates as `Trusted` against the given
trust anchors only (the operator's root, never the SDK's built-in list); it carries the
platform's audit assertion (`com.styleledger.audit`); the checkpoint the assertion
names is signed by KEY (the audit log's verifier key, as for `audit.verify_export`);
and the assertion's leaf hash at its leaf index is included in that checkpoint's tree
by the embedded inclusion proof. Because the manifest's signature covers the assertion,
a forged proof breaks the signature and a foreign proof fails the checkpoint key.

What it does not show: the log entry behind the leaf (it names people and purposes and
does not travel with the image); a reviewer with access reads it from the platform.

Exit status 0 when everything verifies, 1 when anything does not (the first problem is
printed), 2 for usage errors. The log stays domain-free: this module reads the
assertion as plain data and imports nothing of the apps that write it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from audit import tlog
from audit.checkpoint import CheckpointError, load_verifier, open_checkpoint

ASSERTION_LABEL = "com.styleledger.audit"
TRUSTED = "Trusted"


@dataclass
class OutputReport:
    state: str = ""
    assertion: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_manifest(data: bytes, anchors_pem: bytes) -> tuple[str, dict | None, list[str]]:
    """(validation state, the audit assertion or None, failure codes) — c2pa used directly."""
    import c2pa

    mime = _mime(data)
    if mime is None:
        return "", None, ["not a PNG, JPEG or WebP image"]
    config = {
        "trust": {"trust_anchors": anchors_pem.decode("ascii")},
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False},
    }
    try:
        with (
            c2pa.Context.from_dict(config) as context,
            c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
        ):
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
    except c2pa.C2paError as exc:
        return "", None, [f"no readable C2PA manifest: {exc}"]
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    assertion = next(
        (a.get("data") for a in active.get("assertions", []) if a.get("label") == ASSERTION_LABEL),
        None,
    )
    failures = [
        f"{item.get('code')}: {item.get('explanation', '')}"
        for item in store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    ]
    return state, assertion, failures


def verify_output(
    data: bytes, *, key_spec: str, anchors_pem: bytes, origin: str | None = None
) -> OutputReport:
    report = OutputReport()
    state, assertion, failures = read_manifest(data, anchors_pem)
    report.state, report.assertion = state, assertion
    if state != TRUSTED:
        report.problems.append(
            f"manifest is not Trusted under the given anchors (state {state or 'none'}"
            + (f"; {failures[0]}" if failures else "")
            + ")"
        )
        return report
    if not isinstance(assertion, dict):
        report.problems.append(f"the manifest carries no {ASSERTION_LABEL} assertion")
        return report
    try:
        event, cp = assertion["event"], assertion["checkpoint"]
        seq, leaf = int(event["seq"]), bytes.fromhex(event["leaf_hash"])
        proof = [base64.b64decode(p, validate=True) for p in cp["inclusion_proof"]]
        note = cp["note"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        report.problems.append("the audit assertion is malformed (event, checkpoint or proof)")
        return report
    try:
        verifier = load_verifier(key_spec, origin)
        checkpoint = open_checkpoint(note, verifier, origin)
    except CheckpointError as exc:
        report.problems.append(f"checkpoint: {exc}")
        return report
    if checkpoint.size != int(cp.get("size", -1)):
        report.problems.append("the assertion's checkpoint size differs from the signed checkpoint")
        return report
    try:
        tlog.verify_inclusion(leaf, seq, checkpoint.size, proof, checkpoint.root_hash)
    except tlog.ProofError as exc:
        report.problems.append(f"leaf {seq} is not included in the checkpoint: {exc}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify_output", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("image")
    parser.add_argument(
        "--public-key", required=True, help="the log's verifier key, or a file holding it"
    )
    parser.add_argument(
        "--trust-anchor", required=True, help="PEM file of the C2PA root(s) to trust"
    )
    parser.add_argument("--origin", help="the log's origin (needed with a PEM public key)")
    args = parser.parse_args(argv)
    try:
        data = Path(args.image).read_bytes()
        anchors = Path(args.trust_anchor).read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = verify_output(data, key_spec=args.public_key, anchors_pem=anchors, origin=args.origin)
    if not report.ok:
        print(f"FAILED: {report.problems[0]}")
        return 1
    a = report.assertion or {}
    print(
        f"OK: manifest {report.state}; job {a.get('job_id')}; audit leaf {a['event']['seq']} "
        f"included in signed checkpoint of size {a['checkpoint']['size']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
