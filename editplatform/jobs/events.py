"""Audit events of jobs and artifacts: the one place that talks to the audit log.

Callers invoke :func:`emit` inside the same ``transaction.atomic()`` as the change it
describes, so the event and the change commit or roll back together. The audit app
(``audit.log.append_event``) is imported lazily; while it is not installed the event
is only logged, so jobs keep working during its development.
"""

from __future__ import annotations

import logging

from editplatform.core.middleware import current_request_id

logger = logging.getLogger("editplatform.jobs.events")

JOB_SUBMITTED = "job.submitted"
JOB_QUEUED = "job.queued"
JOB_STARTED = "job.started"
JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
ARTIFACT_DOWNLOADED = "artifact.downloaded"
ARTIFACT_VIEWED = "artifact.viewed"


def _append_event():
    try:
        from audit.log import append_event
    except ImportError:
        return None
    return append_event


def audit_available() -> bool:
    return _append_event() is not None


def emit(action: str, *, actor=None, subject: str = "", payload: dict | None = None,
         request_id: str | None = None, actor_name: str | None = None) -> None:
    """Append one audit event (must be called inside the caller's transaction)."""
    rid = request_id or current_request_id()
    rid = None if rid in ("", "-") else rid
    append_event = _append_event()
    if append_event is None:
        logger.info("audit event %s subject=%s actor=%s payload=%s", action, subject,
                    getattr(actor, "pk", None), payload)
        return
    kwargs = {"actor_name": actor_name[:150]} if actor_name and actor is None else {}
    append_event(action, actor=actor, subject=subject, payload=payload or {}, request_id=rid or "", **kwargs)


def job_subject(job) -> str:
    return f"job:{job.pk}"
