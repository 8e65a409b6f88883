"""The log on real PostgreSQL: appends, immutability, tamper detection, concurrency, CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from audit import log as audit_log
from audit import tlog
from audit.actions import UnknownActionError
from audit.checkpoint import Checkpoint as Body
from audit.checkpoint import Signer, sign_checkpoint
from audit.models import AppendOnlyError, AuditEvent
from audit.verify import verify_log
from tests.audit import action_names as actions
from tests.audit.conftest import triggers_disabled, wipe_log
from tests.conftest import ROOT

pytestmark = pytest.mark.postgres


def fill(n: int, subject: str = "job-1") -> list[AuditEvent]:
    return [
        audit_log.append_event(
            actions.JOB_SUBMITTED, subject=subject, payload={"i": i, "h": "ab" * 32}
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_append_is_contiguous_canonical_and_joins_the_callers_transaction(fresh_log):
    user = get_user_model().objects.create_user("alice", password="x" * 16)
    wipe_log(connection)  # creating an account is itself an event (account.created)
    first = audit_log.append_event(
        actions.JOB_SUBMITTED,
        actor=user,
        subject="j1",
        payload={"b": 2, "a": 1.0},
        request_id="req-12345678",
    )
    assert first.seq == 0 and first.actor_name == "alice"
    assert json.loads(first.entry)["payload"] == {"a": 1, "b": 2}
    assert first.entry.startswith(
        f'{{"action":"job.submitted","actor":"alice","actor_id":{user.pk},'
    )
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_log.append_event(actions.JOB_FAILED, subject="j1")
        raise RuntimeError("the change failed, so must its event")
    second = audit_log.append_event(actions.JOB_APPROVED, subject="j1")
    assert second.seq == 1  # no gap left by the rolled-back append
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "action")) == [
        (0, "job.submitted"),
        (1, "job.approved"),
    ]
    with pytest.raises(UnknownActionError, match="unknown audit action"):
        audit_log.append_event("job.teleported")
    assert audit_log.read_head().size == 2
    assert verify_log().ok


@pytest.mark.django_db
def test_database_refuses_update_delete_truncate(fresh_log):
    fill(3)
    audit_log.make_checkpoint()
    statements = [
        "UPDATE audit_event SET action = 'job.approved' WHERE seq = 1",
        "UPDATE audit_event SET entry = entry || ' ' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 2",
        "TRUNCATE audit_event",
        "UPDATE audit_treenode SET hash = hash",
        "DELETE FROM audit_treenode",
        "TRUNCATE audit_treenode",
        "UPDATE audit_checkpoint SET note = 'x'",
        "DELETE FROM audit_checkpoint",
        "TRUNCATE audit_checkpoint",
        "UPDATE audit_loghead SET size = 1",
        "DELETE FROM audit_loghead",
        "TRUNCATE audit_loghead",
    ]
    for statement in statements:
        with (
            pytest.raises(DatabaseError, match="append-only|only grow"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    event = AuditEvent.objects.get(seq=1)
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=1).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 3 and verify_log().ok


@pytest.mark.django_db
def test_deleting_a_user_keeps_the_username_and_the_proof(fresh_log):
    user = get_user_model().objects.create_user("bob", password="x" * 16)
    wipe_log(connection)  # creating an account is itself an event (account.created)
    audit_log.append_event(actions.JOB_SUBMITTED, actor=user, subject="j")
    user.delete()  # Django nulls actor_id: the one UPDATE the trigger allows
    event = AuditEvent.objects.get(seq=0)
    assert event.actor_id is None and event.actor_name == "bob"
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_event SET actor_id = 999, actor_name = 'eve' WHERE seq = 0")
    assert verify_log().ok


def _tamper(sql: str, params=()):
    with triggers_disabled(connection), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_modified_payload_is_detected_at_its_index(fresh_log):
    fill(40)
    audit_log.make_checkpoint()
    assert verify_log().ok
    _tamper("UPDATE audit_event SET entry = replace(entry, '\"i\":17', '\"i\":71') WHERE seq = 17")
    result = verify_log()
    assert not result.ok and result.first_bad_index == 17
    with pytest.raises(CommandError, match="index 17"):
        call_command("audit", "verify")
    # Rewriting the stored leaf hash as well only moves the failure to the signed roots.
    _tamper(
        "UPDATE audit_event SET leaf_hash = sha256(convert_to('\\x00', 'UTF8') || "
        "convert_to(entry, 'UTF8')) WHERE seq = 17"
    )
    _tamper(
        "UPDATE audit_event SET leaf_hash = %s WHERE seq = 17",
        [tlog.hash_leaf(AuditEvent.objects.get(seq=17).entry.encode())],
    )
    again = verify_log()
    assert not again.ok and any("rewritten" in str(p) or "root" in str(p) for p in again.problems)


@pytest.mark.django_db
def test_deleted_row_is_detected_at_its_index(fresh_log):
    fill(30)
    _tamper("DELETE FROM audit_event WHERE seq = 12")
    result = verify_log()
    assert result.first_bad_index == 12 and "missing" in str(result.problems[0])


@pytest.mark.django_db
def test_swapped_rows_are_detected_at_the_first_index(fresh_log):
    fill(30)
    _tamper("UPDATE audit_event SET seq = seq + 1000000 WHERE seq IN (5, 9)")
    _tamper(
        "UPDATE audit_event SET seq = CASE seq WHEN 1000005 THEN 9 ELSE 5 END WHERE seq >= 1000000"
    )
    assert json.loads(AuditEvent.objects.get(seq=5).entry)["seq"] == 9
    result = verify_log()
    assert not result.ok and result.first_bad_index == 5


@pytest.mark.django_db
def test_rollback_to_an_earlier_size_fails_against_the_exported_checkpoint(fresh_log):
    fill(20)
    audit_log.make_checkpoint()
    audit_log.export_checkpoint(
        audit_log.latest_checkpoint().note, 20, bytes(audit_log.latest_checkpoint().root_hash)
    )
    assert verify_log().ok and verify_log().exported_checked >= 1
    # An attacker restores an older state of the whole database: 12 events, their nodes,
    # head and checkpoints all consistent with each other. Only the export remembers.
    frontier = tlog.Frontier()
    for event in AuditEvent.objects.filter(seq__lt=12).order_by("seq"):
        frontier.append(bytes(event.leaf_hash))
    _tamper("DELETE FROM audit_event WHERE seq >= 12")
    _tamper("DELETE FROM audit_checkpoint")
    _tamper(
        "UPDATE audit_loghead SET size = 12, frontier = %s, root_hash = %s, checkpoint_size = 0",
        [frontier.to_bytes(), frontier.root()],
    )
    result = verify_log()
    assert not result.ok
    assert any("rolled back" in str(p) for p in result.problems), result.problems


@pytest.mark.django_db
def test_a_checkpoint_signed_by_another_key_is_rejected(fresh_log):
    fill(5)
    head = audit_log.read_head()
    forged = sign_checkpoint(
        Body("styleledger.local/audit", head.size, head.root_hash),
        Signer.generate("styleledger.local/audit"),
    )
    audit_log.export_checkpoint(forged, head.size, head.root_hash)
    result = verify_log()
    assert not result.ok and "trusted key" in str(result.problems[0])


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_give_contiguous_indices_and_a_valid_tree(fresh_log, settings):
    settings.AUDIT_CHECKPOINT_EVERY = 150
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(number: int) -> None:
        try:
            barrier.wait()
            for i in range(200):
                with transaction.atomic():
                    audit_log.append_event(
                        actions.JOB_STARTED, subject=f"w{number}", payload={"i": i}
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1600))
    for n in range(8):
        assert AuditEvent.objects.filter(subject=f"w{n}").count() == 200
    result = verify_log()
    assert result.ok, result.problems
    assert result.checkpoints_checked >= 10 and result.exported_checked >= 10


@pytest.mark.django_db(transaction=True)
def test_prove_export_and_offline_verification(fresh_log, tmp_path):
    fill(37, subject="job-x")
    fill(3, subject="job-y")
    out = tmp_path / "prove.json"
    with out.open("w") as handle:
        call_command("audit", "prove", "11", stdout=handle)
    proof = json.loads(out.read_text())
    tlog.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        11,
        proof["tree_size"],
        [base64.b64decode(h) for h in proof["inclusion_proof"]],
        base64.b64decode(proof["root_hash"]),
    )
    key = tmp_path / "log.vkey"
    with key.open("w") as handle:
        call_command("audit", "public-key", stdout=handle)
    export = tmp_path / "export.jsonl"
    csv_export = tmp_path / "export.csv"
    call_command("audit", "export", "--output", str(export))
    call_command(
        "audit", "export", "--format", "csv", "--subject", "job-y", "--output", str(csv_export)
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }

    def offline(path):
        return subprocess.run(
            [sys.executable, "-m", "audit.verify_export", str(path), "--public-key", str(key)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = offline(export)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 41 events" in ok.stdout  # 40 + the audit.exported event itself
    ok_csv = offline(csv_export)
    assert ok_csv.returncode == 0 and "OK: 3 events" in ok_csv.stdout, ok_csv.stderr
    raw = export.read_bytes()
    position = raw.index(b'\\"i\\":5') + 6  # the digit 5 inside one event's entry
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(raw[:position] + b"6" + raw[position + 1 :])
    bad = offline(tampered)
    assert bad.returncode == 1 and "FAILED" in bad.stderr
    raw_csv = csv_export.read_text()
    flipped = tmp_path / "tampered.csv"
    flipped.write_text(raw_csv.replace(",job-y,", ",job-z,", 1))  # an event row's subject column
    assert offline(flipped).returncode == 1
    # The offline verifier imported no Django settings.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, audit.verify_export; print('django.conf' in sys.modules)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "False"
    assert AuditEvent.objects.filter(action=actions.AUDIT_EXPORTED).count() == 2


@pytest.mark.django_db
def test_login_signals_are_audited(fresh_log, client):
    user = get_user_model().objects.create_user("carol", password="correct-horse-battery")
    client.post("/login/", {"username": "carol", "password": "wrong-password!"})
    client.force_login(user)
    actions_logged = list(AuditEvent.objects.order_by("seq").values_list("action", "actor_name"))
    assert (actions.USER_LOGIN_FAILED, "") in actions_logged
    assert (actions.USER_LOGIN, "carol") in actions_logged
    failed = AuditEvent.objects.get(action=actions.USER_LOGIN_FAILED)
    assert failed.payload["username"] == "carol" and "password" not in failed.entry


@pytest.mark.django_db
def test_a_row_whose_entry_is_not_json_is_named_not_fatal(fresh_log):
    fill(8)
    _tamper("UPDATE audit_event SET entry = 'not json' WHERE seq = 3")
    result = verify_log()
    assert result.first_bad_index == 3
    assert any("not valid JSON" in str(p) for p in result.problems)
