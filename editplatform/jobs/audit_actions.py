"""The audit actions the jobs app writes (registered with the log's vocabulary on import)."""

from __future__ import annotations

from audit.actions import register

JOB_SUBMITTED = register("job.submitted", "a job was submitted with its original and edits")
JOB_QUEUED = register("job.queued", "a job was handed to the GPU queue")
JOB_STARTED = register("job.started", "a worker started a job")
JOB_SUCCEEDED = register("job.succeeded", "a job finished; its latent, outputs and model are recorded")
JOB_FAILED = register("job.failed", "a job failed")
JOB_CANCELLED = register("job.cancelled", "a job was cancelled")
JOB_APPROVAL_REQUIRED = register(
    "job.approval_required", "the worker's re-check sent a job back for approval")
JOB_DOMAIN_CHECKED = register(
    "job.domain_checked", "the domain gate judged a job's aligned photo; the report and the decision")
ARTIFACT_VIEWED = register("artifact.viewed", "someone viewed a job's artifact")
ARTIFACT_DOWNLOADED = register("artifact.downloaded", "someone downloaded a job's artifact")
