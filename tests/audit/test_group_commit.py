"""Group commit and the one-round-trip append on real PostgreSQL (audit/log.py).

Appends made outside a transaction by several threads share one transaction and one
head update; the head this process last committed is only a guess, which the database
checks under the head's row lock (`audit_expect_head`) before any write.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from audit import log as audit_log
from audit.models import AuditEvent
from audit.verify import verify_log
from tests.audit import action_names as actions
from tests.conftest import ROOT

pytestmark = pytest.mark.postgres


def _offline_verify(tmp_path) -> subprocess.CompletedProcess:
    key = tmp_path / "log.vkey"
    with key.open("w") as handle:
        call_command("audit", "public-key", stdout=handle)
    export = tmp_path / "export.jsonl"
    call_command("audit", "export", "--output", str(export))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "audit.verify_export", str(export), "--public-key", str(key)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _hold_head(locked: threading.Event, release: threading.Event) -> None:
    """Another writer holding the log head's row lock until ``release`` (at most 30 s)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT size FROM audit_loghead WHERE id = 1 FOR UPDATE")
            locked.set()
            release.wait(30)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_appends_that_arrive_together_commit_as_one_batch(fresh_log, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_EVERY = 3  # checkpoints fall inside the batch
    audit_log.append_event(actions.JOB_SUBMITTED, subject="first")
    locked, release = threading.Event(), threading.Event()
    results: dict[int, AuditEvent] = {}
    errors: list[BaseException] = []

    def append(number: int) -> None:
        try:
            results[number] = audit_log.append_event(
                actions.JOB_STARTED, subject=f"w{number}", payload={"n": number}
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=_hold_head, args=(locked, release))
    holder.start()
    assert locked.wait(30)
    leader = threading.Thread(target=append, args=(0,))
    leader.start()
    group = audit_log._group("default")
    deadline = time.monotonic() + 30
    while not group._leader and time.monotonic() < deadline:
        time.sleep(0.01)
    followers = [threading.Thread(target=append, args=(n,)) for n in range(1, 8)]
    for thread in followers:
        thread.start()
    while len(group._queue) < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(group._queue) == 7, "the followers queue behind the leader"
    release.set()
    for thread in [holder, leader, *followers]:
        thread.join(60)
    assert not errors, errors

    assert sorted(e.seq for e in results.values()) == list(range(1, 9))
    stored = {e.seq: e for e in AuditEvent.objects.all()}
    assert sorted(stored) == list(range(9))
    for number, event in results.items():
        # each caller got its own event back, as stored
        assert stored[event.seq].subject == f"w{number}"
        assert stored[event.seq].entry == event.entry
    batch = [results[n] for n in range(1, 8)]
    assert len({e.created_at for e in batch}) == 1, "the seven queued appends shared a commit"
    assert {e.seq for e in batch} == set(range(2, 9))  # the leader's lone event came first
    result = verify_log()
    assert result.ok, result.problems
    assert result.checkpoints_checked >= 3 and result.exported_checked >= 3
    offline = _offline_verify(tmp_path)
    assert offline.returncode == 0, offline.stderr


@pytest.mark.django_db(transaction=True)
def test_a_stale_or_forged_cached_head_is_never_written_on(fresh_log):
    audit_log.append_event(actions.JOB_SUBMITTED, subject="a")
    old = audit_log.read_head()
    audit_log.append_event(actions.JOB_SUBMITTED, subject="b")
    audit_log.append_event(actions.JOB_SUBMITTED, subject="c")

    # Another process appended: this process's cached head is behind.
    audit_log._heads.forget("default")
    audit_log._heads.remember("default", old)
    event = audit_log.append_event(actions.JOB_APPROVED, subject="d")
    assert event.seq == 3

    # A head of the right size whose tree differs (a restored and regrown database).
    forged = dataclasses.replace(
        audit_log.read_head(), root_hash=b"\x01" * 32, frontier=b"\x02" * 32
    )
    audit_log._heads.forget("default")
    audit_log._heads.remember("default", forged)
    with transaction.atomic():  # the in-transaction path checks the guess the same way
        event = audit_log.append_event(actions.JOB_APPROVED, subject="e")
    assert event.seq == 4

    # The checkpoint task moved only the head's checkpoint size.
    before_checkpoint = audit_log.read_head()
    audit_log.make_checkpoint()
    audit_log._heads.remember("default", before_checkpoint)
    event = audit_log.append_event(actions.JOB_APPROVED, subject="f")
    assert event.seq == 5
    assert audit_log.read_head().checkpoint_size == 5  # not moved back by a stale guess

    assert list(AuditEvent.objects.order_by("seq").values_list("subject", flat=True)) == list(
        "abcdef"
    )
    result = verify_log()
    assert result.ok, result.problems


@pytest.mark.django_db(transaction=True)
def test_an_event_in_a_rolled_back_transaction_leaves_the_cached_head_alone(fresh_log):
    audit_log.append_event(actions.JOB_SUBMITTED, subject="a")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_log.append_event(actions.JOB_FAILED, subject="gone")
        raise RuntimeError("the change failed, so must its event")
    assert audit_log._heads.get("default").size == 1
    event = audit_log.append_event(actions.JOB_APPROVED, subject="b")
    assert event.seq == 1
    assert list(AuditEvent.objects.order_by("seq").values_list("subject", flat=True)) == ["a", "b"]
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
def test_appends_in_one_transaction_each_take_one_round_trip(fresh_log):
    """A job's `submitted` then `queued` in one transaction: the second starts from the
    head the first left (not the stale committed one), so no refused try, no lock path."""
    from django.test.utils import CaptureQueriesContext

    audit_log.append_event(actions.JOB_SUBMITTED, subject="warm")  # the process knows the head
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        first = audit_log.append_event(actions.JOB_SUBMITTED, subject="job")
        second = audit_log.append_event(actions.JOB_QUEUED, subject="job")
        third = audit_log.append_event(actions.JOB_APPROVED, subject="job")
    sql = [q["sql"] for q in queries.captured_queries]
    assert len([s for s in sql if "audit_expect_head" in s]) == 3, sql
    assert not any("FOR UPDATE" in s or "ROLLBACK" in s for s in sql), sql
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)

    # A savepoint rolled back after an append: the guess it left is not used again.
    with transaction.atomic():
        audit_log.append_event(actions.JOB_SUBMITTED, subject="kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_log.append_event(actions.JOB_FAILED, subject="gone")
            raise RuntimeError("the inner change failed")
        after = audit_log.append_event(actions.JOB_APPROVED, subject="kept")
    assert after.seq == 5
    # And a rolled-back transaction's guess does not reach the next transaction.
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_log.append_event(actions.JOB_FAILED, subject="gone")
        raise RuntimeError("the change failed")
    with transaction.atomic():
        last = audit_log.append_event(actions.JOB_APPROVED, subject="kept")
    assert last.seq == 6
    subjects = list(AuditEvent.objects.order_by("seq").values_list("subject", flat=True))
    assert subjects == ["warm", "job", "job", "job", "kept", "kept", "kept"]
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
def test_event_filters_run_once_per_group_and_a_refused_event_fails_alone(fresh_log, monkeypatch):
    """A batch filter (the keyed-id lookup is one) sees a whole group at once: one call,
    so one query, per group commit; an event it refuses fails alone."""
    calls: list[list[str]] = []

    @audit_log.batch_filter
    def tag(events):
        calls.append([subject for _, subject, _, _ in events])
        if any(subject == "refused" for _, subject, _, _ in events):
            raise ValueError("refused by the filter")
        return [
            (subject, {**payload, "tagged": True}, subjects)
            for _, subject, payload, subjects in events
        ]

    monkeypatch.setattr(audit_log, "_EVENT_FILTERS", [*audit_log._EVENT_FILTERS, tag])
    audit_log.append_event(actions.JOB_SUBMITTED, subject="first")
    assert calls == [["first"]]
    locked, release = threading.Event(), threading.Event()
    results: dict[str, AuditEvent] = {}
    errors: dict[str, BaseException] = {}

    def append(subject: str) -> None:
        try:
            results[subject] = audit_log.append_event(actions.JOB_STARTED, subject=subject)
        except BaseException as exc:  # reported below
            errors[subject] = exc
        finally:
            connections.close_all()

    holder = threading.Thread(target=_hold_head, args=(locked, release))
    holder.start()
    assert locked.wait(30)
    leader = threading.Thread(target=append, args=("lead",))
    leader.start()
    group = audit_log._group("default")
    deadline = time.monotonic() + 30
    while not group._leader and time.monotonic() < deadline:
        time.sleep(0.01)
    names = ["w1", "w2", "refused", "w3"]
    followers = [threading.Thread(target=append, args=(name,)) for name in names]
    for thread in followers:
        thread.start()
        while len(group._queue) < followers.index(thread) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # queue them in this order
    assert len(group._queue) == 4
    release.set()
    for thread in [holder, leader, *followers]:
        thread.join(60)

    assert set(errors) == {"refused"} and "refused by the filter" in str(errors["refused"])
    # first alone, the leader alone, then the group in one call; it failed, so each alone
    assert calls[:3] == [["first"], ["lead"], names]
    assert sorted(calls[3:]) == sorted([[name] for name in names])
    stored = {e.subject: e for e in AuditEvent.objects.all()}
    assert set(stored) == {"first", "lead", "w1", "w2", "w3"}
    assert sorted(e.seq for e in stored.values()) == list(range(5))
    assert all(e.payload["tagged"] for e in stored.values())
    for name in ("w1", "w2", "w3"):
        assert results[name].entry == stored[name].entry
    assert verify_log().ok
