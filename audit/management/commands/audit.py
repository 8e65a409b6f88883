"""`manage.py audit verify|prove|export|checkpoint|public-key|bench`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit import actions, signing, tlog
from audit import log as audit_log
from audit.trust import TrustError, load_state, open_trusted, read_notes, save_state


def _when(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{value!r} is not an ISO date or date-time")
        parsed = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class Command(BaseCommand):
    help = "Verify, prove, export and checkpoint the tamper-evident audit log."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        verify = sub.add_parser(
            "verify", help="recompute every leaf and the tree; check all checkpoints"
        )
        verify.add_argument("--json", action="store_true", help="print the result as JSON")
        verify.add_argument(
            "--record", action="store_true", help="append an audit.verified event afterwards"
        )
        verify.add_argument(
            "--trusted-checkpoint",
            action="append",
            default=[],
            metavar="FILE",
            help="a signed checkpoint kept outside this database (note text, or lines of a "
            "checkpoints.jsonl copied off the machine); may be repeated",
        )
        verify.add_argument(
            "--state",
            metavar="FILE",
            help="the verifier's own state (e.g. ~/.styleledger-verifier, on the verifying "
            "host): its checkpoint is trusted, and advanced after a successful run",
        )

        prove = sub.add_parser("prove", help="inclusion proof (JSON) of one event")
        prove.add_argument("seq", type=int, help="the event's sequence number")
        prove.add_argument(
            "--size", type=int, help="tree size to prove against (default: latest checkpoint)"
        )

        consistency = sub.add_parser(
            "consistency", help="consistency proof (JSON) between two tree sizes"
        )
        consistency.add_argument("old_size", type=int)
        consistency.add_argument("new_size", type=int, nargs="?")

        export = sub.add_parser(
            "export", help="events with inclusion proofs and the signed checkpoint"
        )
        export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
        export.add_argument("--since", help="ISO date or date-time (inclusive)")
        export.add_argument("--until", help="ISO date or date-time (exclusive)")
        export.add_argument("--since-seq", type=int)
        export.add_argument("--subject", default="", help="only this subject (e.g. a job id)")
        export.add_argument("--action", default="")
        export.add_argument("--actor", default="")
        export.add_argument("--output", "-o", help="file to write (default: standard output)")
        export.add_argument(
            "--trusted-size",
            type=int,
            action="append",
            default=[],
            metavar="N",
            help="tree size the recipient trusts: the export carries a consistency proof from "
            "it (default: the newest checkpoint in the export file)",
        )
        export.add_argument(
            "--trusted-checkpoint",
            action="append",
            default=[],
            metavar="FILE",
            help="a trusted signed checkpoint: refuse to export a log that does not extend "
            "it, and carry the consistency proof from its size",
        )

        sub.add_parser(
            "checkpoint",
            help="sign a checkpoint now and re-export any missing from the export file",
        )

        ack = sub.add_parser(
            "acknowledge-rollback",
            help="after a database restore: record the lost events and sign the fork, so "
            "appends resume (docs/operations-restore.md)",
        )
        ack.add_argument(
            "--reason", required=True, help="why the log was rolled back (recorded and signed)"
        )
        ack.add_argument(
            "--operator", default="cli", help="who acknowledges (recorded as the actor)"
        )
        ack.add_argument("--json", action="store_true")

        public_key = sub.add_parser("public-key", help="print the log's public (verifier) key")
        public_key.add_argument("--format", choices=("vkey", "pem"), default="vkey")

        bench = sub.add_parser(
            "bench", help="append/verify/page benchmark (use a throwaway database)"
        )
        bench.add_argument("--appends", type=int, default=2000, help="events per append run")
        bench.add_argument("--writers", default="1,8", help="comma-separated writer counts")
        bench.add_argument(
            "--size", type=int, default=1_000_000, help="log size for verify and page timings"
        )
        bench.add_argument("--page-requests", type=int, default=300, help="0: skip")
        bench.add_argument(
            "--modes",
            default="standalone,transaction",
            help="append modes: standalone (plain calls, group-committed), "
            "transaction (one transaction.atomic() per event)",
        )
        bench.add_argument("--json", action="store_true")

    def handle(self, *args, subcommand: str, **options):
        return getattr(self, "handle_" + subcommand.replace("-", "_"))(**options)

    # --- subcommands -------------------------------------------------------------------

    def handle_verify(
        self, *, json: bool = False, record: bool = False, trusted_checkpoint=(), state=None, **_
    ):
        from audit.verify import verify_log

        trusted = _trusted_notes(trusted_checkpoint, state)
        result = verify_log(trusted=trusted)
        if result.ok and state and result.newest_verified is not None:
            note, checkpoint = result.newest_verified
            save_state(state, note, checkpoint)
        if record:
            with transaction.atomic():
                audit_log.append_event(
                    actions.AUDIT_VERIFIED, actor_name="cli", payload=result.as_dict()
                )
        if json:
            self.stdout.write(_json(result.as_dict()))
        else:
            self.stdout.write(result.summary())
            for problem in result.problems[1:10]:
                self.stdout.write(f"  also: {problem}")
        if not result.ok:
            raise CommandError(
                f"audit log verification failed at index {result.first_bad_index}"
                if result.first_bad_index is not None
                else "audit log verification failed"
            )

    def handle_prove(self, *, seq: int, size: int | None = None, **_):
        from audit.models import AuditEvent, Checkpoint

        if size is None:
            checkpoint = audit_log.make_checkpoint()
        else:
            checkpoint = Checkpoint.objects.filter(size=size).first()
            if checkpoint is None:
                raise CommandError(f"no signed checkpoint of size {size}")
        event = AuditEvent.objects.filter(seq=seq).first()
        if event is None or seq >= checkpoint.size:
            raise CommandError(f"event {seq} is not in the tree of size {checkpoint.size}")
        proof = audit_log.inclusion_proof(seq, checkpoint.size)
        tlog.verify_inclusion(
            bytes(event.leaf_hash), seq, checkpoint.size, proof, bytes(checkpoint.root_hash)
        )
        self.stdout.write(
            _json(
                {
                    "seq": seq,
                    "tree_size": checkpoint.size,
                    "leaf_hash": bytes(event.leaf_hash).hex(),
                    "entry": event.entry,
                    "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
                    "root_hash": base64.b64encode(bytes(checkpoint.root_hash)).decode(),
                    "checkpoint": checkpoint.note,
                }
            )
        )

    def handle_consistency(self, *, old_size: int, new_size: int | None = None, **_):
        head = audit_log.read_head()
        new_size = head.size if new_size is None else new_size
        if not 0 <= old_size <= new_size <= head.size:
            raise CommandError(f"need 0 <= old_size <= new_size <= {head.size}")
        proof = audit_log.consistency_proof(old_size, new_size)
        reader = audit_log.hash_reader()
        self.stdout.write(
            _json(
                {
                    "old_size": old_size,
                    "new_size": new_size,
                    "old_root": base64.b64encode(tlog.tree_hash(old_size, reader)).decode(),
                    "new_root": base64.b64encode(tlog.tree_hash(new_size, reader)).decode(),
                    "consistency_proof": [base64.b64encode(h).decode() for h in proof],
                }
            )
        )

    def handle_export(
        self,
        *,
        format: str,
        output: str | None = None,
        since=None,
        until=None,
        since_seq=None,
        subject="",
        action="",
        actor="",
        trusted_size=(),
        trusted_checkpoint=(),
        **_,
    ):
        from audit.export import ExportError, iter_export

        filters = {
            "since": _when(since) if since else None,
            "until": _when(until) if until else None,
            "since_seq": since_seq,
            "subject": subject,
            "action": action,
            "actor": actor,
        }
        try:
            trusted_roots = {
                c.size: c.root_hash
                for c in open_trusted(
                    _trusted_notes(trusted_checkpoint, None),
                    signing.get_verifier(),
                    signing.origin(),
                )
            }
        except TrustError as exc:
            raise CommandError(str(exc)) from None
        sizes = list(trusted_size) or None  # None: from the newest checkpoint already exported
        with transaction.atomic():
            audit_log.append_event(
                actions.AUDIT_EXPORTED,
                actor_name="cli",
                payload={
                    "format": format,
                    **{
                        k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                        for k, v in filters.items()
                        if v not in (None, "")
                    },
                },
            )
        target = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
        try:
            for chunk in iter_export(
                fmt=format, trusted_sizes=sizes, trusted_roots=trusted_roots, **filters
            ):
                target.write(chunk)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if output:
                target.close()
        if output:
            self.stderr.write(f"wrote {output}")

    def handle_checkpoint(self, **_):
        with transaction.atomic():
            audit_log.append_event(
                actions.AUDIT_CHECKPOINT, actor_name="cli", payload={"reason": "manual"}
            )
        checkpoint = audit_log.make_checkpoint()
        exported = audit_log.sync_export()
        self.stdout.write(checkpoint.note)
        self.stderr.write(
            f"checkpoint of size {checkpoint.size} signed; {exported} re-exported to "
            f"{audit_log.export_path()}"
        )

    def handle_acknowledge_rollback(self, *, reason: str, operator: str, json: bool = False, **_):
        from audit.rollback import acknowledge
        from editplatform.core.errors import DomainError

        try:
            facts = acknowledge(reason, operator)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if json:
            self.stdout.write(_json(facts))
            return
        lost = facts["lost_events"]
        self.stdout.write(
            f"rollback acknowledged as event {facts['event_seq']}: "
            + (
                f"events {lost[0]}..{lost[1]} of the witnessed log are lost; "
                if lost
                else "the database's history differs from the witnessed one; "
            )
            + f"fork checkpoint of size {facts['checkpoint_size']} exported:\n{facts['note']}"
        )

    def handle_public_key(self, *, format: str, **_):
        verifier = signing.get_verifier()
        self.stdout.write(verifier.pem() if format == "pem" else verifier.vkey())

    def handle_bench(self, **options):
        from audit.bench import run_bench

        results = run_bench(
            appends=options["appends"],
            writers=[int(w) for w in options["writers"].split(",") if w],
            size=options["size"],
            page_requests=options["page_requests"],
            modes=tuple(m for m in options["modes"].split(",") if m),
            out=self.stderr,
        )
        self.stdout.write(
            _json(results)
            if options["json"]
            else "\n".join(f"{k}: {v}" for k, v in results.items())
        )


def _trusted_notes(files, state) -> list[str]:
    try:
        notes = [note for path in files for note in read_notes(path)]
        if state:
            notes += load_state(state)
    except TrustError as exc:
        raise CommandError(str(exc)) from None
    return notes


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
