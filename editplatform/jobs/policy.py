"""When a job needs an approval before it may run.

A job needs approval when any requested edit is marked ``sensitive`` in the model
bundle's catalog (with a non-zero strength), or when the operator requires approval
for every job (``JOB_APPROVAL_FOR_ALL``). An approval binds to the job's parameter hash
(original, edits, purpose), so an approval can never be reused for different
parameters; the worker re-checks this right before running.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from django.conf import settings


def params_sha256(original_sha256: str, edits: Mapping[str, float], purpose: str) -> str:
    """Canonical hash of what a job will do (what an approver approves)."""
    canonical = json.dumps(
        {"original_sha256": original_sha256, "edits": dict(sorted(edits.items())), "purpose": purpose},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def sensitive_edits(catalog, edits: Mapping[str, float]) -> list[str]:
    return catalog.sensitive_edits(edits)


def needs_approval(catalog, edits: Mapping[str, float]) -> bool:
    return bool(settings.JOB_APPROVAL_FOR_ALL) or bool(sensitive_edits(catalog, edits))


def approval_satisfied(job, catalog) -> bool:
    """True when the job may run now: no approval needed, or enough valid approvals.

    The four-eyes rules (distinct approvers other than the requester, bound to the
    parameter hash recomputed from the row, unexpired) live in the approvals app. A job
    whose row no longer matches its own hash never runs, approval or not.
    """
    from editplatform.approvals.services import approval_satisfied as four_eyes_satisfied

    if job.params_sha256 != params_sha256(job.original_id, job.edits, job.purpose):
        return False
    if not (job.needs_approval or needs_approval(catalog, job.edits)):
        return True
    if not job.needs_approval:
        return False  # the catalog now marks an edit sensitive: the job was never approved
    return four_eyes_satisfied(job)
