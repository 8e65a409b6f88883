"""The registry's Celery task: one proof-of-concept run on a GPU worker (``gpu`` queue).

Acks late like edit jobs: a worker that dies mid-run has the message redelivered and the
run (still ``running``) is claimed again; a finished run is never redone. A run may take
longer than an edit job (up to ``POC_MAX_IMAGES`` photos, timed twice), hence its own
time limits.
"""

from __future__ import annotations

from celery import shared_task

from editplatform.models_registry import poc_runs

SOFT_TIME_LIMIT = 3600


@shared_task(
    name=poc_runs.RUN_POC,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=SOFT_TIME_LIMIT + 60,
    ignore_result=True,
)
def run_poc(run_id: str) -> str:
    return poc_runs.execute(run_id)
