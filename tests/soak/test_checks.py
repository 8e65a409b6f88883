"""The soak checker's own rules, on hand-made job rows and event chains (no services).

Each case is a violation the checker must report; without the rule it tests, the soak
would pass a broken platform. The soak runs themselves are in test_soak.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from tests.soak.checks import (
    abandoned,
    plain_checks,
    ran_after_end,
    unexpected_jobs,
    witness_coverage,
)

NOW = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)


def _job(state: str, **fields) -> SimpleNamespace:
    base = {
        "state": state,
        "needs_approval": False,
        "attempts": 1,
        "edited_id": "e" * 64,
        "heartbeat_at": None,
        "queued_at": NOW - timedelta(seconds=30),
        "enqueued_at": NOW - timedelta(seconds=30),
        "created_at": NOW - timedelta(seconds=31),
    }
    return SimpleNamespace(**{**base, **fields})


def _chain(*actions: str, edited: str = "e" * 64) -> list[tuple[int, str, dict]]:
    return [
        (i, a, {"outputs": {"edited": edited}} if a == "job.succeeded" else {})
        for i, a in enumerate(actions)
    ]


GOOD = ("job.submitted", "job.queued", "job.started", "job.succeeded")


def test_a_plain_job_that_ran_in_order_once_passes():
    assert plain_checks("j", _job("succeeded"), _chain(*GOOD)) == ([], [])
    # a retry repeats queued/started before the one success: still in order
    retried = _chain("job.submitted", "job.queued", "job.started", "job.queued", *GOOD[2:])
    assert plain_checks("j", _job("succeeded"), retried) == ([], [])


def test_a_plain_job_that_succeeded_without_being_started_breaks_the_chain():
    once, order = plain_checks("j", _job("succeeded"), _chain("job.submitted", "job.succeeded"))
    assert once == [] and order and "lacks job.queued after job.submitted" in order[0]
    _, order = plain_checks(
        "j", _job("succeeded"), _chain("job.submitted", "job.queued", "job.succeeded")
    )
    assert order and "lacks job.started after job.queued" in order[0]
    # succeeded logged before it started: the start that follows does not count
    _, order = plain_checks(
        "j",
        _job("succeeded"),
        _chain("job.submitted", "job.queued", "job.succeeded", "job.started"),
    )
    assert order and "lacks job.succeeded after job.started" in order[0]


def test_a_second_success_and_a_rewritten_output_are_reported():
    once, _ = plain_checks("j", _job("succeeded"), _chain(*GOOD, "job.started", "job.succeeded"))
    assert any("2 job.succeeded" in p for p in once)
    once, _ = plain_checks("j", _job("succeeded", edited_id="f" * 64), _chain(*GOOD))
    assert any("written twice" in p for p in once)


def test_nothing_may_run_a_job_after_its_terminal_event():
    ran = ran_after_end(
        "j", _job("cancelled"), ["job.submitted", "job.queued", "job.cancelled", "job.started"]
    )
    assert ran and "ran after it ended cancelled" in ran[0]
    failed_then_ok = ran_after_end("j", _job("failed"), [*GOOD[:3], "job.failed", "job.succeeded"])
    assert failed_then_ok
    # a stale worker (no lease fence) finished a job its client had cancelled: the row
    # now says succeeded, the log says it ended cancelled first
    overwritten = ran_after_end(
        "j", _job("succeeded"), [*GOOD[:3], "job.cancelled", "job.succeeded"]
    )
    assert overwritten and "ran after it ended cancelled" in overwritten[0]
    held = _job("succeeded", needs_approval=True)
    released = ["job.held", "job.approved", "job.released"]
    assert ran_after_end("j", held, [*GOOD[:3], *released, "job.held"])
    # what may follow an end: the destroyed outputs of a held job, an artifact view
    assert not ran_after_end(
        "j", _job("rejected"), ["job.held", "job.rejected", "job.outputs_destroyed"]
    )
    assert not ran_after_end("j", _job("succeeded"), [*GOOD, "artifact.viewed"])


def test_a_job_nothing_will_run_is_reported_lost():
    lease = 6
    stale = NOW - timedelta(seconds=60)
    dead = _job("running", heartbeat_at=stale, queued_at=stale, enqueued_at=stale)
    assert abandoned(dead, NOW, lease)
    lost_message = _job("queued", queued_at=stale, enqueued_at=stale, created_at=stale)
    assert abandoned(lost_message, NOW, lease)
    alive = _job("running", heartbeat_at=NOW - timedelta(seconds=2))
    assert not abandoned(alive, NOW, lease)
    republished = _job("queued", queued_at=stale, enqueued_at=NOW - timedelta(seconds=3))
    assert not abandoned(republished, NOW, lease)
    # a held job waits for approvers, not workers
    assert not abandoned(_job("awaiting_approval", heartbeat_at=stale), NOW, lease)


def test_a_job_no_client_was_given_is_reported():
    stored = {"a": "key-a", "b": "key-b", "c": "key-c"}
    found = unexpected_jobs(stored, accepted={"a"}, unanswered_keys={"key-c"})
    assert found == ["job b is stored but no client was given it (Idempotency-Key 'key-b')"]
    assert unexpected_jobs(stored, accepted={"a", "b", "c"}, unanswered_keys=set()) == []


def test_the_witnessed_checkpoints_must_reach_the_end_of_the_log():
    assert witness_coverage([10, 50, 120], 120) == []
    gap = witness_coverage([10, 50], 120)
    assert gap and "events 50..119 are covered by no witnessed checkpoint" in gap[0]
    assert witness_coverage([], 120) == []  # "no checkpoint was exported" reports that case
