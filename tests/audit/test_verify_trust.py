"""Verifiers that take their trust from outside the database (PostgreSQL).

Each test plays an operator with database superuser rights (triggers off) and shows
which verifier catches the attack, naming the index where there is one.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import log as audit_log
from audit import tlog, verify_export
from audit.models import AuditEvent, TreeNode
from audit.queries import filter_events, inclusion_status
from audit.verify import verify_log
from tests.audit import action_names as actions
from tests.audit.conftest import triggers_disabled

pytestmark = pytest.mark.postgres


def fill(n: int, subject: str = "job-1") -> None:
    for i in range(n):
        audit_log.append_event(actions.JOB_SUBMITTED, subject=subject, payload={"i": i})


def tamper(sql: str, params=()) -> None:
    with triggers_disabled(connection), connection.cursor() as cursor:
        cursor.execute(sql, params)


def witness(tmp_path, name: str = "witness.note") -> tuple:
    """Sign a checkpoint now and keep a copy off the machine (here: a file the attacker never
    touches)."""
    checkpoint = audit_log.make_checkpoint()
    path = tmp_path / name
    path.write_text(checkpoint.note)
    return path, checkpoint


def export_to_file(checkpoint) -> None:
    """What the on-commit hook does after a real commit (these tests run inside one transaction)."""
    audit_log.export_checkpoint(checkpoint.note, checkpoint.size, bytes(checkpoint.root_hash))


def rebuild_tree(size: int) -> tlog.MemoryTree:
    """An attacker's full, self-consistent rewrite of the stored tree, head and checkpoints."""
    leaves = [
        bytes(h)
        for h in AuditEvent.objects.filter(seq__lt=size)
        .order_by("seq")
        .values_list("leaf_hash", flat=True)
    ]
    tree = tlog.MemoryTree(leaves)
    tamper("DELETE FROM audit_event WHERE seq >= %s", [size])
    tamper("DELETE FROM audit_treenode")
    tamper("DELETE FROM audit_checkpoint")
    rows = [
        (TreeNode.key_for(level, index), value)
        for level, hashes in enumerate(tree.levels)
        for index, value in enumerate(hashes)
    ]
    with triggers_disabled(connection), connection.cursor() as cursor:
        cursor.executemany("INSERT INTO audit_treenode (key, hash) VALUES (%s, %s)", rows)
        cursor.execute(
            "UPDATE audit_loghead SET size = %s, frontier = %s, root_hash = %s, checkpoint_size = "
            "0, checkpoint_at = NULL",
            [size, tree.frontier.to_bytes(), tree.root()],
        )
    return tree


def rewrite_entry(seq: int, old: str, new: str) -> None:
    tamper("UPDATE audit_event SET entry = replace(entry, %s, %s) WHERE seq = %s", [old, new, seq])
    entry = AuditEvent.objects.get(seq=seq).entry
    tamper(
        "UPDATE audit_event SET leaf_hash = %s WHERE seq = %s",
        [tlog.hash_leaf(entry.encode()), seq],
    )


@pytest.mark.django_db
def test_payload_rewritten_with_its_leaf_hash_is_named_by_index(fresh_log, tmp_path):
    fill(40)
    note, _ = witness(tmp_path)
    rewrite_entry(17, '"i":17', '"i":71')
    result = verify_log(trusted=[note.read_text()])
    assert not result.ok and result.first_bad_index == 17, result.problems
    assert any(
        "index 17: entry and leaf hash were rewritten together" in str(p) for p in result.problems
    )
    with pytest.raises(CommandError, match="index 17"):
        call_command("audit", "verify", "--trusted-checkpoint", str(note))


@pytest.mark.django_db
def test_fully_rewritten_database_fails_only_against_the_trusted_checkpoints(fresh_log, tmp_path):
    fill(10)
    first, _ = witness(tmp_path, "w10.note")
    fill(10)
    second, _ = witness(tmp_path, "w20.note")
    fill(20)
    third, _ = witness(tmp_path, "w40.note")
    rewrite_entry(17, '"i":7', '"i":8')
    rebuild_tree(40)  # tree, head and checkpoints all recomputed: the database agrees with itself
    audit_log.export_path().unlink(missing_ok=True)
    assert verify_log().ok  # nothing inside the machine can tell
    trusted = [p.read_text() for p in (first, second, third)]
    result = verify_log(trusted=trusted)
    assert not result.ok
    text = "\n".join(map(str, result.problems))
    assert "trusted checkpoint at size 20: recomputed root differs" in text
    assert "the rewrite lies in events 10..19" in text
    assert result.trusted_checked == 1  # size 10 still matches


@pytest.mark.django_db
def test_rolled_back_database_with_and_without_its_checkpoint_file(fresh_log, tmp_path):
    fill(20)
    note, checkpoint = witness(tmp_path)
    export_to_file(checkpoint)
    state = tmp_path / "verifier-state"
    call_command("audit", "verify", "--state", str(state))  # the verifier remembers size 20
    assert json.loads(state.read_text())["size"] == 20
    rebuild_tree(12)  # an older state of the whole database restored

    with_file = verify_log()
    assert not with_file.ok and with_file.first_bad_index == 12
    assert any("rolled back" in str(p) for p in with_file.problems)

    audit_log.export_path().unlink()  # the attacker rolls back the file on this machine too
    assert verify_log().ok
    without_file = verify_log(trusted=[note.read_text()])
    assert not without_file.ok and without_file.first_bad_index == 12
    with pytest.raises(CommandError, match="index 12"):
        call_command("audit", "verify", "--state", str(state))
    assert json.loads(state.read_text())["size"] == 20  # a failed run never moves the state back

    # The export no longer certifies itself: the server signs the rolled-back tree, but
    # the offline verifier holding the witnessed checkpoint refuses it.
    with pytest.raises(CommandError, match="does not extend the trusted checkpoint"):
        call_command(
            "audit", "export", "--trusted-checkpoint", str(note), "-o", str(tmp_path / "x.jsonl")
        )
    call_command("audit", "export", "-o", str(tmp_path / "rolled.jsonl"))
    report = verify_export.verify_file(str(tmp_path / "rolled.jsonl"), _vkey(), [note.read_text()])
    assert (
        not report.ok and "is older than your trusted checkpoint (20 events)" in report.problems[0]
    )


@pytest.mark.django_db
def test_deleted_last_event_with_the_head_fixed_up(fresh_log, tmp_path):
    fill(15)
    _, checkpoint = witness(tmp_path)
    export_to_file(checkpoint)
    state = tmp_path / "state"
    call_command("audit", "verify", "--state", str(state))
    rebuild_tree(14)  # seq 14 deleted, head, nodes and checkpoints made to match
    audit_log.export_path().unlink()
    assert verify_log().ok
    with pytest.raises(CommandError, match="index 14"):
        call_command("audit", "verify", "--state", str(state))


@pytest.mark.django_db
def test_rows_beyond_the_head_are_named_hidden_and_cannot_block_appends(fresh_log, tmp_path):
    fill(10)
    template = AuditEvent.objects.get(seq=3)
    for seq in (10, 25):  # planted with the triggers off: a copy of a genuine row
        tamper(
            "INSERT INTO audit_event (seq, created_at, actor_name, action, subject, request_id, "
            "entry, leaf_hash) VALUES (%s, %s, '', %s, %s, '', %s, %s)",
            [
                seq,
                template.created_at,
                template.action,
                template.subject,
                template.entry,
                template.leaf_hash,
            ],
        )
    tamper(
        "INSERT INTO audit_treenode (key, hash) VALUES (%s, %s)",
        [TreeNode.key_for(1, 5), b"\x07" * 32],
    )
    tamper(
        "INSERT INTO audit_checkpoint (size, root_hash, note, created_at) VALUES (12, %s, "
        "'forged', now())",
        [b"\x07" * 32],
    )

    result = verify_log()
    named = {p.index for p in result.problems}
    assert {10, 25} <= named, result.problems
    assert any("subtree (level 1, index 5) lies beyond the head" in str(p) for p in result.problems)
    # Reviewers never see the planted rows as part of the log.
    assert sorted(filter_events().values_list("seq", flat=True)) == list(range(10))
    assert filter_events(seq=10).count() == 0 and filter_events(subject="job-1").count() == 10
    status = inclusion_status(AuditEvent.objects.get(seq=25))
    assert not status["verified"] and "beyond the log's head" in status["reason"]

    # Appends go on: the planted rows are moved to the quarantine, the tree stays contiguous.
    appended = [
        audit_log.append_event(actions.JOB_STARTED, subject="after", payload={"k": k})
        for k in range(3)
    ]
    assert [e.seq for e in appended] == [10, 11, 12]
    audit_log.make_checkpoint()
    assert AuditEvent.objects.get(seq=10).action == actions.JOB_STARTED
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, row_key FROM audit_quarantine ORDER BY id")
        quarantined = cursor.fetchall()
    assert ("audit_event", 10) in quarantined and ("audit_event", 25) in quarantined
    assert ("audit_treenode", TreeNode.key_for(1, 5)) in quarantined
    assert ("audit_checkpoint", 12) in quarantined
    after = verify_log()
    problems = "\n".join(map(str, after.problems))
    assert "audit_event row at seq 25 was planted beyond the head" in problems
    # Nothing else is wrong: every genuine row and every checkpoint verifies.
    assert all("planted beyond the head" in str(p) for p in after.problems), after.problems


def _vkey() -> str:
    return audit_log.signing.get_verifier().vkey()


@pytest.mark.django_db
def test_export_with_lines_removed_is_caught_and_trust_comes_from_the_witness(fresh_log, tmp_path):
    fill(20, subject="job-a")
    note, _ = witness(tmp_path)
    fill(10, subject="job-b")
    out = tmp_path / "full.jsonl"
    call_command("audit", "export", "--trusted-checkpoint", str(note), "-o", str(out))
    trusted = [note.read_text()]
    state = tmp_path / "offline-state"
    assert (
        verify_export.main(
            [
                str(out),
                "--public-key",
                _vkey(),
                "--trusted-checkpoint",
                str(note),
                "--state",
                str(state),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(state.read_text())["size"] == 31  # 30 + the audit.exported event
    good = verify_export.verify_file(str(out), _vkey(), trusted)
    assert good.ok and good.events == 31 and good.trusted_checked == 1

    lines = out.read_text().splitlines(keepends=True)
    seq_of = {json.loads(line).get("seq"): n for n, line in enumerate(lines)}
    cases = {
        "a middle line": ([seq_of[7]], "index 7: events 7..7 are missing"),
        "the last line": ([seq_of[30]], "index 30: events 30..30 are missing from the end"),
        "two lines": ([seq_of[3], seq_of[4]], "index 3: events 3..4 are missing"),
    }
    for name, (drop, expected) in cases.items():
        cut = tmp_path / "cut.jsonl"
        cut.write_text("".join(line for n, line in enumerate(lines) if n not in drop))
        report = verify_export.verify_file(str(cut), _vkey(), trusted)
        assert not report.ok and expected in report.problems[0], (name, report.problems)
        assert verify_export.main([str(cut), "--public-key", _vkey(), "--state", str(state)]) == 1
    # A line duplicated is caught as well.
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("".join(lines[:6] + [lines[5]] + lines[6:]))
    assert "repeats or reorders" in verify_export.verify_file(str(doubled), _vkey()).problems[0]
    # An event replaced by the hashes standing for it, in an export that says it is complete.
    event = json.loads(lines[seq_of[9]])
    swapped = tmp_path / "swapped.jsonl"
    gap = (
        json.dumps(
            {
                "type": "gap",
                "from": 9,
                "to": 10,
                "hashes": [base64.b64encode(bytes.fromhex(event["leaf_hash"])).decode()],
            }
        )
        + "\n"
    )
    swapped.write_text("".join(gap if n == seq_of[9] else line for n, line in enumerate(lines)))
    assert (
        "index 9: events 9..9 appear only as hashes"
        in verify_export.verify_file(str(swapped), _vkey()).problems[0]
    )

    # Filtered exports stand in for what they leave out with subtree hashes, so they
    # are checked for completeness too; the CSV form the same.
    subset = tmp_path / "job-b.csv"
    call_command("audit", "export", "--format", "csv", "--subject", "job-b", "-o", str(subset))
    report = verify_export.verify_file(str(subset), _vkey())
    assert report.ok and report.events == 10 and report.omitted == 22, report.problems
    rows = subset.read_text().splitlines(keepends=True)
    victim = next(n for n, row in enumerate(rows) if row.startswith("event,25,"))
    (tmp_path / "cut.csv").write_text("".join(rows[:victim] + rows[victim + 1 :]))
    cut_report = verify_export.verify_file(str(tmp_path / "cut.csv"), _vkey())
    assert not cut_report.ok and "index 25" in cut_report.problems[0]


@pytest.mark.django_db
def test_export_needs_a_proof_from_the_verifiers_trusted_size(fresh_log, tmp_path):
    fill(9)
    note, _ = witness(tmp_path)
    fill(4)
    out = tmp_path / "later.jsonl"
    call_command("audit", "export", "--since-seq", "11", "--trusted-size", "5", "-o", str(out))
    report = verify_export.verify_file(str(out), _vkey(), [note.read_text()])
    assert not report.ok and "no consistency proof from your trusted size 9" in report.problems[0]
    call_command("audit", "export", "--since-seq", "11", "--trusted-size", "9", "-o", str(out))
    assert verify_export.verify_file(str(out), _vkey(), [note.read_text()]).ok


@pytest.mark.django_db
def test_planted_rows_are_not_listed_on_the_pages_or_the_api(fresh_log, client):
    from tests.audit.helpers import make_user, sign_in
    from tests.conftest import api_client_for

    fill(4, subject="real")
    template = AuditEvent.objects.get(seq=1)
    tamper(
        "INSERT INTO audit_event (seq, created_at, actor_name, action, subject, request_id, "
        "entry, leaf_hash) VALUES (50, %s, '', %s, 'planted', '', %s, %s)",
        [template.created_at, template.action, template.entry, template.leaf_hash],
    )
    reviewer = make_user("rev-planted", "reviewer")
    sign_in(client, reviewer)
    page = client.get("/audit/", {"subject": "planted"})
    assert page.status_code == 200 and list(page.context["events"]) == []
    listed = [e.seq for e in client.get("/audit/").context["events"]]
    assert 50 not in listed and {0, 1, 2, 3} <= set(listed)  # (signing in logged events too)
    api = api_client_for(reviewer)
    assert api.get("/api/v1/audit/events", {"subject": "planted"}).json()["results"] == []
    listed = [e["seq"] for e in api.get("/api/v1/audit/events").json()["results"]]
    assert 50 not in listed and {0, 1, 2, 3} <= set(listed)
    detail = api.get("/api/v1/audit/events/50").json()
    assert (
        detail["inclusion"]["verified"] is False
        and "beyond the log's head" in detail["inclusion"]["reason"]
    )
