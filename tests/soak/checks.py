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
        if logged != _row_outputs(job):
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


def job_checks(accepted: dict[str, dict]) -> tuple[dict[str, list[str]], dict]:
    """accepted: job id -> what the client saw (kind, ...). Returns (problems by check, counts)."""
    from audit.models import AuditEvent
    from editplatform.jobs.models import EditJob
    from editplatform.jobs.states import TERMINAL

    problems: dict[str, list[str]] = {
        name: []
        for name in (
            "every job terminal",
            "no accepted job lost",
            "ran to success at most once",
            "complete event chain",
        )
    }
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
        if job.needs_approval:
            once, order = held_checks(job_id, job, chain)
            problems["ran to success at most once"] += once
            problems["complete event chain"] += order
        else:
            if len(successes) > 1:
                problems["ran to success at most once"].append(
                    f"job {job_id} has {len(successes)} job.succeeded events "
                    f"(attempts {job.attempts})"
                )
            if job.state == "succeeded":
                if not successes:
                    problems["ran to success at most once"].append(
                        f"job {job_id} succeeded without job.succeeded"
                    )
                elif successes[-1].get("outputs", {}).get("edited") != job.edited_id:
                    problems["ran to success at most once"].append(
                        f"job {job_id}: the row's output differs from the logged one "
                        "(written twice)"
                    )
            elif successes:
                problems["ran to success at most once"].append(
                    f"job {job_id} is {job.state} but logged job.succeeded"
                )
            if "job.held" in actions:
                problems["ran to success at most once"].append(
                    f"job {job_id} needs no approval but was held"
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
    from audit.trust import read_notes
    from audit.verify import verify_log

    notes = read_notes(witnessed) if witnessed.exists() else []
    result = verify_log(trusted=notes)
    problems = [str(p) for p in result.problems]
    if not notes:
        problems.append("no checkpoint was exported: nothing witnessed the log")
    return problems, {
        "summary": result.summary(),
        "size": result.size,
        "trusted_checked": result.trusted_checked,
    }


def storage_check() -> tuple[list[str], dict]:
    from editplatform.jobs.management.commands.check_artifacts import missing_by_job, orphan_blobs

    missing, orphans = missing_by_job(), orphan_blobs()
    problems = [f"job {j} misses {kinds}" for j, kinds in missing.items()]
    problems += [f"orphan blob {name} (no Artifact row refers to it)" for name in orphans]
    return problems, {"missing": len(missing), "orphans": len(orphans)}
