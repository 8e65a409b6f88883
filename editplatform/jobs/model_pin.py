"""The worker's side of model pinning: which version a job runs with, and refusing it.

A job is pinned at submit to the model version then active (``EditJob.model_pin``),
so activating another version (or rolling back) never changes a job already queued.
The worker reads the pin before it claims the job; a version the registry no longer
serves (unknown, retired, altered on disk) fails the job with a message naming it,
instead of retrying or silently using another model.
"""

from __future__ import annotations

import logging

from editplatform.jobs import endings, execution
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State

logger = logging.getLogger(__name__)

CODE = "model_unknown"


def pinned_version(job_id) -> str | None:
    """The version the job was pinned to (None: the active one, for jobs from before pins)."""
    pin = EditJob.objects.filter(pk=job_id).values_list("model_pin", flat=True).first()
    return pin or None


def refuse(job_id, message: str) -> bool:
    """Fail a job whose pinned model is not served, in place of claiming it.

    Under the claim's own rules (:func:`execution.claim_condition`): a queued job (first
    delivery), or a running one whose worker died (re-delivery, or the sweeper's
    re-publish once the lease expired) — otherwise such a job would stay ``running``
    until its lease was handled again. A job some live worker holds is left alone.
    """
    job = EditJob.objects.filter(pk=job_id).first()
    if job is None:
        return False
    where = execution.claim_condition(job)
    if where is None:
        logger.info("job %s is %s; nothing to refuse for this delivery", job.pk, job.state)
        return False
    if not endings.fail_job(
        job,
        CODE,
        message,
        sources=frozenset({State(job.state)}),
        where=where,
        details={"model_pin": job.model_pin},
    ):
        return False
    logger.error("job %s refused: %s", job.pk, message)
    return True
