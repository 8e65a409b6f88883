"""The audit actions the approvals app writes (registered with the log's vocabulary on import)."""

from __future__ import annotations

from audit.actions import register

JOB_APPROVED = register("job.approved", "an approver approved a job's parameters")
JOB_REJECTED = register("job.rejected", "an approver rejected a job, with a reason")
