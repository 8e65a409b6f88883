"""The soak's verdict: the platform's guarantees, checked from the database, storage and log.

Each check returns a list of problems (empty = holds). They read only what the
platform wrote: job rows, audit events, stored blobs, and the checkpoints exported
outside the database (given to the verifier as trusted, as a witness would).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

TERMINAL_EVENT = {
    "succeeded": "job.succeeded",
    "failed": "job.failed",
    "cancelled": "job.cancelled",
    "rejected": "job.rejected",
    "expired": "job.expired",
}
# Compute, then release: a job that needed approval ends "succeeded" by its release.
RELEASED_EVENT = "job.released"
# The path of a released held job, in order (retries may repeat job.queued/job.started).
HELD_PATH = (
    "job.submitted",
    "job.queued",
    "job.started",
    "job.held",
    "job.approved",
    "job.released",
)
# The ends of a held job that destroy its outputs instead of releasing them.
DESTROYED_ENDS = ("rejected", "expired", "cancelled")


def _logged_outputs(payload: dict) -> dict[str, str]:
    """{kind: sha256} of the outputs a job.succeeded / job.held event logged."""
    outputs = payload.get("outputs") or {}
    return {
        "reconstruction": outputs.get("reconstruction") or "",
        "edited": outputs.get("edited") or "",
        "latent": payload.get("latent_sha256") or "",
    }


def _row_outputs(job) -> dict[str, str]:
    return {
        kind: getattr(job, f"{kind}_id") or "" for kind in ("reconstruction", "edited", "latent")
    }


def _names(logged_value: str, sha: str) -> bool:
    """Does a value from an event name the artifact ``sha``? Events since the keyed-ids
    cut-over (issue 17) record its commitment, older ones the plain hash."""
    if logged_value == sha:
        return True
    if not sha:
        return False
    try:
        from tests.jobs.helpers import logged

        return logged_value == logged(sha)
    except RuntimeError:  # no database: the checker's own unit tests use plain hashes
        return False


def _same_outputs(logged: dict[str, str], row: dict[str, str]) -> bool:
    return logged.keys() == row.keys() and all(_names(logged[k], row[k]) for k in row)


def held_checks(
    job_id: str, job, chain: list[tuple[int, str, dict]]
) -> tuple[list[str], list[str]]:
    """Compute, then release, for one job that needed approval.

    Returns (problems for "ran to success at most once", problems for "complete event
    chain"). A held job is held once, with the outputs its row names; it is either
    released (submitted -> queued -> started -> held -> approved -> released, state
    succeeded, the row keeps the held outputs) or ends rejected/expired/cancelled with
    those outputs destroyed (job.outputs_destroyed of the held hashes, the row naming
    none). A job that failed or was cancelled before it was held was never held.
    """
    once: list[str] = []
    order: list[str] = []
    actions = [a for _, a, _ in chain]
    held = [p for _, a, p in chain if a == "job.held"]
    if len(held) > 1:
        once.append(f"job {job_id} has {len(held)} job.held events (attempts {job.attempts})")
    if "job.succeeded" in actions:
        once.append(
            f"job {job_id} needs approval but logged job.succeeded (released without being held)"
        )
    if not held:
        if job.state in ("succeeded", "rejected", "expired"):
            order.append(f"job {job_id} needs approval and is {job.state} without job.held")
        if RELEASED_EVENT in actions or "job.approved" in actions:
            order.append(f"job {job_id} was approved or released without job.held")
        return once, order
    logged = _logged_outputs(held[-1])
    if job.state == "succeeded":
        if not _same_outputs(logged, _row_outputs(job)):
            once.append(
                f"job {job_id}: the row's outputs differ from the held ones logged "
                f"({_row_outputs(job)} vs {logged})"
            )
        if actions.count(RELEASED_EVENT) != 1:
            order.append(
                f"job {job_id} is succeeded with {actions.count(RELEASED_EVENT)} {RELEASED_EVENT}"
            )
        released = [p for _, a, p in chain if a == RELEASED_EVENT]
        # the release logs every output kind (full-size result, crop, transform too);
        # the ones the hold logged must be the same bytes
        released_outputs = released[-1].get("held_outputs") or {} if released else {}
        if released and {k: released_outputs.get(k) or "" for k in logged} != logged:
            once.append(f"job {job_id}: released outputs differ from the held ones logged")
        position = -1
        for step in HELD_PATH:  # each step's first occurrence after the previous step's
            later = [i for i, a in enumerate(actions) if a == step and i > position]
            if not later:
                order.append(
                    f"job {job_id}: released chain lacks {step} after "
                    f"{HELD_PATH[HELD_PATH.index(step) - 1] if position >= 0 else 'the start'} "
                    f"({actions})"
                )
                break
            position = later[0]
        first_held = actions.index("job.held")
        if any(a == "job.approved" and i < first_held for i, a in enumerate(actions)):
            order.append(f"job {job_id} was approved before it was held")
        if RELEASED_EVENT in actions:
            after = actions[actions.index(RELEASED_EVENT) + 1 :]
            ran = [
                x for x in after if x in ("job.started", "job.held", "job.succeeded", "job.failed")
            ]
            if ran:
                order.append(f"job {job_id} ran again after its release ({ran})")
    elif job.state in DESTROYED_ENDS:
        want = TERMINAL_EVENT[job.state]
        if want in actions and actions.index(want) < actions.index("job.held"):
            order.append(f"job {job_id} was held after it ended {job.state}")
        destroyed = [p for _, a, p in chain if a == "job.outputs_destroyed"]
        if len(destroyed) != 1:
            order.append(
                f"job {job_id} is {job.state} after job.held with {len(destroyed)} "
                "job.outputs_destroyed"
            )
        elif destroyed[0].get("held_outputs") != {k: v for k, v in logged.items() if v}:
            once.append(f"job {job_id}: destroyed outputs differ from the held ones logged")
        if any(_row_outputs(job).values()):
            once.append(
                f"job {job_id} is {job.state} but its row still names outputs {_row_outputs(job)}"
            )
        if RELEASED_EVENT in actions:
            once.append(f"job {job_id} is {job.state} but logged {RELEASED_EVENT}")
    else:
        order.append(f"job {job_id} was held but ended {job.state}")
    return once, order


# The path of a plain job that succeeded, in order (retries may repeat queued/started).
PLAIN_PATH = ("job.submitted", "job.queued", "job.started", "job.succeeded")
# Events that mean a worker ran (or finished running) the job.
RUN_EVENTS = ("job.started", "job.held", "job.succeeded", "job.failed", "job.released")


def _missing_step(job_id: str, actions: list[str], path: tuple[str, ...]) -> str | None:
    """The first step of `path` not found after the previous one, as a problem; else None."""
    position = -1
    for number, step in enumerate(path):
        later = [i for i, a in enumerate(actions) if a == step and i > position]
        if not later:
            after = path[number - 1] if number else "the start"
            return f"job {job_id}: chain lacks {step} after {after} ({actions})"
        position = later[0]
    return None


def plain_checks(
    job_id: str, job, chain: list[tuple[int, str, dict]]
) -> tuple[list[str], list[str]]:
    """A job that needed no approval: at most one job.succeeded, none unless succeeded,
    the row names the logged output, never held; a succeeded one went submitted -> queued
    -> started -> succeeded in that order.

    Returns (problems for "ran to success at most once", problems for "complete event
    chain").
    """
    once: list[str] = []
    order: list[str] = []
    actions = [a for _, a, _ in chain]
    successes = [p for _, a, p in chain if a == "job.succeeded"]
    if len(successes) > 1:
        once.append(
            f"job {job_id} has {len(successes)} job.succeeded events (attempts {job.attempts})"
        )
    if job.state == "succeeded":
        if not successes:
            once.append(f"job {job_id} succeeded without job.succeeded")
        elif not _names((successes[-1].get("outputs") or {}).get("edited") or "", job.edited_id):
            once.append(
                f"job {job_id}: the row's output differs from the logged one (written twice)"
            )
        missing = _missing_step(job_id, actions, PLAIN_PATH)
        if missing:
            order.append(missing)
    elif successes:
        once.append(f"job {job_id} is {job.state} but logged job.succeeded")
    if "job.held" in actions:
        once.append(f"job {job_id} needs no approval but was held")
    return once, order


def ran_after_end(job_id: str, job, actions: list[str]) -> list[str]:
    """Nothing runs a job after its first terminal event (a cancelled job that a worker
    still started or even finished, a failed one that later succeeded): problems for
    "complete event chain". The first end counts, not the one the row shows now: a worker
    without a lease fence overwrites a cancelled job's row with "succeeded" afterwards."""
    ends = {*TERMINAL_EVENT.values(), RELEASED_EVENT}
    if job.needs_approval:  # a held job ends by its release; job.succeeded is not its event
        ends.discard("job.succeeded")
    first = next((i for i, action in enumerate(actions) if action in ends), None)
    if first is None:
        return []
    ran = [a for a in actions[first + 1 :] if a in RUN_EVENTS]
    ended = actions[first].removeprefix("job.")
    return [f"job {job_id} ran after it ended {ended} ({ran})"] if ran else []


def _last_seen(job):
    """The last sign that something was about to run the job: its heartbeat, its queueing
    or its (re-)publication by the sweeper."""
    stamps = [job.heartbeat_at, job.queued_at, job.enqueued_at, job.created_at]
    return max((t for t in stamps if t is not None), default=None)


def _age(job, now) -> str:
    seen = _last_seen(job)
    return f"{(now - seen).total_seconds():.0f} s" if seen else "never"


def abandoned(job, now, lease_seconds: float) -> bool:
    """A job left queued or running that nothing will finish: no heartbeat, queueing or
    re-publication for twice the lease (the worker died, its message went with it and
    nobody re-published it). A held job waits for people, not workers: never abandoned."""
    if job.state not in ("queued", "running"):
        return False
    seen = _last_seen(job)
    return seen is None or (now - seen).total_seconds() > 2 * lease_seconds


def unexpected_jobs(
    stored: dict[str, str | None], accepted: set[str], unanswered_keys: set[str] | frozenset
) -> list[str]:
    """Jobs in the database that no client was answered with: a submit stored twice (the
    Idempotency-Key not honoured) or a bad upload that stored a job. A job whose submit never
    got an answer (the client gave up during a fault) is the client's problem, already
    reported under "clients got the answers they should", not a duplicate."""
    return [
        f"job {job_id} is stored but no client was given it (Idempotency-Key {key!r})"
        for job_id, key in sorted(stored.items())
        if job_id not in accepted and key not in unanswered_keys
    ]


def witness_coverage(sizes: list[int], log_size: int) -> list[str]:
    """The witnessed checkpoints must reach the end of the log: events after the last one
    are trusted on the database's word alone (exports that stopped after a fault)."""
    if not sizes:
        return []  # reported as "no checkpoint was exported"
    last = max(sizes)
    if last < log_size:
        return [
            f"events {last}..{log_size - 1} are covered by no witnessed checkpoint "
            f"(the last exported one is at size {last} of {log_size})"
        ]
    return []


def job_checks(
    accepted: dict[str, dict], unanswered_keys: frozenset[str] = frozenset()
) -> tuple[dict[str, list[str]], dict]:
    """accepted: job id -> what the client saw (kind, ...); unanswered_keys: the
    Idempotency-Keys of submits that never got an answer. Returns (problems by check, counts)."""
    from django.conf import settings
    from django.utils import timezone

    from audit.models import AuditEvent
    from editplatform.jobs.models import EditJob
    from editplatform.jobs.states import TERMINAL

    now, lease_seconds = timezone.now(), settings.JOB_LEASE_SECONDS

    problems: dict[str, list[str]] = {
        name: []
        for name in (
            "every job terminal",
            "no accepted job lost",
            "ran to success at most once",
            "complete event chain",
        )
    }
    stored = dict(EditJob.objects.values_list("pk", "idempotency_key"))
    problems["no job stored that no client was given"] = unexpected_jobs(
        {str(pk): key for pk, key in stored.items()}, set(accepted), unanswered_keys
    )
    jobs = {str(j.pk): j for j in EditJob.objects.filter(pk__in=list(accepted))}
    for job_id in accepted:
        if job_id not in jobs:
            problems["no accepted job lost"].append(
                f"job {job_id} was accepted (201/200) but is not stored"
            )
    events: dict[str, list[tuple[int, str, dict]]] = defaultdict(list)
    rows = (
        AuditEvent.objects.filter(subject__startswith="job:")
        .order_by("seq")
        .values_list("seq", "subject", "action", "entry")
    )
    for seq, subject, action, entry in rows.iterator():
        events[subject[4:]].append((seq, action, json.loads(entry)["payload"]))
    states: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    for job_id, job in jobs.items():
        states[job.state] += 1
        if job.state == "failed":
            failed[job.error_code or "?"] += 1
        chain = events.get(job_id, [])
        actions = [a for _, a, _ in chain]
        if job.state not in TERMINAL:
            problems["every job terminal"].append(f"job {job_id} is still {job.state}")
        successes = [p for _, a, p in chain if a == "job.succeeded"]
        once, order = (held_checks if job.needs_approval else plain_checks)(job_id, job, chain)
        problems["ran to success at most once"] += once
        problems["complete event chain"] += order
        order = ran_after_end(job_id, job, actions)
        problems["complete event chain"] += order
        if job.state not in TERMINAL and abandoned(job, now, lease_seconds):
            problems["no accepted job lost"].append(
                f"job {job_id} is abandoned: {job.state}, last sign of life "
                f"{_age(job, now)} ago, nothing will run it (its message was lost)"
            )
        if not actions or actions[0] != "job.submitted" or actions.count("job.submitted") != 1:
            problems["complete event chain"].append(
                f"job {job_id}: chain does not start with one job.submitted ({actions[:3]})"
            )
        want = (
            RELEASED_EVENT
            if job.needs_approval and job.state == "succeeded"
            else TERMINAL_EVENT.get(job.state)
        )
        if (
            want
            and actions.count(want) != 1
            and not (want == "job.succeeded" and len(successes) > 1)
        ):
            problems["complete event chain"].append(
                f"job {job_id} is {job.state} with {actions.count(want)} {want}"
            )
    return problems, {"states": dict(states), "jobs": len(jobs), "failed_by_code": dict(failed)}


def audit_check(witnessed: Path) -> tuple[list[str], dict]:
    """`verify_log` given the exported checkpoints as trusted; the last of them must cover
    the whole log (the harness exports a final checkpoint after the drain)."""
    from audit.checkpoint import CheckpointError, open_checkpoint
    from audit.signing import get_verifier
    from audit.trust import read_notes
    from audit.verify import verify_log

    notes = read_notes(witnessed) if witnessed.exists() else []
    result = verify_log(trusted=notes)
    problems = [str(p) for p in result.problems]
    if not notes:
        problems.append("no checkpoint was exported: nothing witnessed the log")
    verifier, sizes = get_verifier(), []
    for note in notes:
        try:
            sizes.append(open_checkpoint(note, verifier).size)
        except CheckpointError:
            pass  # verify_log reported it
    problems += witness_coverage(sizes, result.size)
    return problems, {
        "summary": result.summary(),
        "size": result.size,
        "trusted_checked": result.trusted_checked,
        "witnessed_up_to": max(sizes, default=0),
    }


def storage_check() -> tuple[list[str], dict]:
    from editplatform.jobs.management.commands.check_artifacts import missing_by_job, orphan_blobs

    missing, orphans = missing_by_job(), orphan_blobs()
    problems = [f"job {j} misses {kinds}" for j, kinds in missing.items()]
    problems += [
        f"orphan blob {_describe_blob(name)} (no Artifact row refers to it)" for name in orphans
    ]
    return problems, {"missing": len(missing), "orphans": len(orphans)}


def _describe_blob(name: str) -> str:
    """A stored blob's name with what it looks like and when it was written, so an orphan
    can be matched with the fault that left it (the harness prints each fault's times)."""
    from django.core.files.storage import default_storage

    try:
        with default_storage.open(name, "rb") as handle:
            head = handle.read(8)
        size = default_storage.size(name)
        written = default_storage.get_modified_time(name).strftime("%H:%M:%S")
    except (OSError, NotImplementedError):
        return name
    kind = (
        "JPEG"
        if head.startswith(b"\xff\xd8")
        else "PNG"
        if head.startswith(b"\x89PNG")
        else "other"
    )
    return f"{name} ({kind}, {size} bytes, written {written} UTC)"
