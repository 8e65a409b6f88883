"""The soak's verdict: the platform's guarantees, checked from the database, storage and log.

Each check returns a list of problems (empty = holds). They read only what the
platform wrote: job rows, audit events, stored blobs, and the checkpoints exported
outside the database (given to the verifier as trusted, as a witness would).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

TERMINAL_EVENT = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled",
                  "rejected": "job.rejected"}


def job_checks(accepted: dict[str, dict]) -> tuple[dict[str, list[str]], dict]:
    """accepted: job id -> what the client saw (kind, ...). Returns (problems by check, counts)."""
    from audit.models import AuditEvent
    from editplatform.jobs.models import EditJob
    from editplatform.jobs.states import TERMINAL

    problems: dict[str, list[str]] = {name: [] for name in (
        "every job terminal", "no accepted job lost", "ran to success at most once", "complete event chain")}
    jobs = {str(j.pk): j for j in EditJob.objects.filter(pk__in=list(accepted))}
    for job_id in accepted:
        if job_id not in jobs:
            problems["no accepted job lost"].append(f"job {job_id} was accepted (201/200) but is not stored")
    events: dict[str, list[tuple[int, str, dict]]] = defaultdict(list)
    rows = AuditEvent.objects.filter(subject__startswith="job:").order_by("seq").values_list("seq", "subject", "action",
                                                                                           "entry")
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
        if len(successes) > 1:
            problems["ran to success at most once"].append(
                f"job {job_id} has {len(successes)} job.succeeded events (attempts {job.attempts})")
        if job.state == "succeeded":
            if not successes:
                problems["ran to success at most once"].append(f"job {job_id} succeeded without job.succeeded")
            elif successes[-1].get("outputs", {}).get("edited") != job.edited_id:
                problems["ran to success at most once"].append(
                    f"job {job_id}: the row's output differs from the logged one (written twice)")
        elif successes:
            problems["ran to success at most once"].append(f"job {job_id} is {job.state} but logged job.succeeded")
        if not actions or actions[0] != "job.submitted" or actions.count("job.submitted") != 1:
            problems["complete event chain"].append(f"job {job_id}: chain does not start with one job.submitted "
                                                    f"({actions[:3]})")
        want = TERMINAL_EVENT.get(job.state)
        if want and actions.count(want) != 1 and not (want == "job.succeeded" and len(successes) > 1):
            problems["complete event chain"].append(f"job {job_id} is {job.state} with {actions.count(want)} {want}")
        if job.needs_approval and "job.started" in actions and (
                "job.approved" not in actions or actions.index("job.approved") > actions.index("job.started")):
            problems["complete event chain"].append(f"job {job_id} needs approval but started before job.approved")
    return problems, {"states": dict(states), "jobs": len(jobs), "failed_by_code": dict(failed)}


def audit_check(witnessed: Path) -> tuple[list[str], dict]:
    from audit.trust import read_notes
    from audit.verify import verify_log

    notes = read_notes(witnessed) if witnessed.exists() else []
    result = verify_log(trusted=notes)
    problems = [str(p) for p in result.problems]
    if not notes:
        problems.append("no checkpoint was exported: nothing witnessed the log")
    return problems, {"summary": result.summary(), "size": result.size, "trusted_checked": result.trusted_checked}


def storage_check() -> tuple[list[str], dict]:
    from editplatform.jobs.management.commands.check_artifacts import missing_by_job, orphan_blobs

    missing, orphans = missing_by_job(), orphan_blobs()
    problems = [f"job {j} misses {kinds}" for j, kinds in missing.items()]
    problems += [f"orphan blob {name} (no Artifact row refers to it)" for name in orphans]
    return problems, {"missing": len(missing), "orphans": len(orphans)}
