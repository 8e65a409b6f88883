"""Audit events of jobs and artifacts: the one place that talks to the audit log.

Callers invoke :func:`emit` inside the same ``transaction.atomic()`` as the change it
describes, so the event and the change commit or roll back together: a change whose
event cannot be written does not happen.
"""

from __future__ import annotations

from audit.log import append_event
from editplatform.core.middleware import current_request_id
from editplatform.jobs.audit_actions import (  # noqa: F401 - re-exported for callers
    ARTIFACT_DOWNLOADED,
    ARTIFACT_SHREDDED,
    ARTIFACT_VIEWED,
    JOB_APPROVAL_REQUIRED,
    JOB_CANCELLED,
    JOB_DOMAIN_CHECKED,
    JOB_EXPIRED,
    JOB_FAILED,
    JOB_HELD,
    JOB_OUTPUTS_DESTROYED,
    JOB_QUEUED,
    JOB_RELEASED,
    JOB_STARTED,
    JOB_SUBMITTED,
    JOB_SUCCEEDED,
)


def emit(
    action: str,
    *,
    actor=None,
    subject: str = "",
    payload: dict | None = None,
    request_id: str | None = None,
    actor_name: str | None = None,
    subjects=(),
) -> None:
    """Append one audit event (must be called inside the caller's transaction).

    ``subject`` is the job (``job:<id>``) for every event about a job or its artifacts,
    so the job's timeline is complete; ``subjects`` names the artifacts it concerns.
    """
    rid = request_id or current_request_id()
    rid = None if rid in ("", "-") else rid
    kwargs = {"actor_name": actor_name[:150]} if actor_name and actor is None else {}
    append_event(
        action,
        actor=actor,
        subject=subject,
        payload=payload or {},
        request_id=rid or "",
        subjects=list(subjects),
        **kwargs,
    )


def job_subject(job) -> str:
    return f"job:{job.pk}"


def artifact_subject(sha256: str) -> str:
    return f"artifact:{sha256}"


def artifact_subjects(hashes) -> list[str]:
    return [artifact_subject(sha) for sha in hashes if sha]
