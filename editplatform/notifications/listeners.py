"""Turn committed audit events about a job into notices for the job's requester.

Runs wherever the event was appended (the web process for decisions, the worker for
results). A failure here is logged by the signal's robust delivery and never undoes the
job's own change, which is already committed.
"""

from __future__ import annotations

import logging
import uuid

from editplatform.notifications import services

log = logging.getLogger(__name__)

# audit action -> notice kind. A job that needs approval is computed first and held
# (job.held: nothing to tell; the requester cannot see it yet); its result reaches the
# requester with job.released, or never (job.rejected, job.expired).
ACTIONS = {
    "job.approved": "approved",
    "job.rejected": "rejected",
    "job.expired": "expired",
    "job.released": "succeeded",
    "job.succeeded": "succeeded",
    "job.failed": "failed",
}


def job_id_of(subject: str) -> uuid.UUID | None:
    if not subject.startswith("job:"):
        return None
    try:
        return uuid.UUID(subject[4:])
    except ValueError:
        return None


def on_event_appended(sender, event, **kwargs) -> None:
    kind = ACTIONS.get(event.action)
    job_id = job_id_of(event.subject or "")
    if kind is None or job_id is None:
        return
    services.notify_requester(job_id, kind=kind, event_seq=event.seq, actor_name=event.actor_name,
                              payload=event.payload)
