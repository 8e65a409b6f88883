"""The Celery app for test workers whose jobs must run slowly enough to be watched.

A test that kills a worker mid-job, or races two workers, needs each run to last a
while. Production code has no knob for that: a test starts its worker with
``-A tests.jobs.slow_worker`` (``start_worker(..., app=SLOW_APP)``) and
``TEST_PROGRESS_DELAY_MS``, and this module makes every progress report of that
worker's pool process (one job's, or a batch's) sleep that long after it was written.
"""

from __future__ import annotations

import logging
import os
import time

from celery.signals import worker_process_init

from editplatform.celery import app

__all__ = ("app",)
logger = logging.getLogger(__name__)

DELAY_ENV = "TEST_PROGRESS_DELAY_MS"


@worker_process_init.connect(weak=False, dispatch_uid="tests.slow_progress")
def _slow_progress(**_kwargs) -> None:
    from editplatform.jobs import execution  # Django is set up only once the worker runs

    delay_ms = int(os.environ.get(DELAY_ENV, "0"))
    report = execution.report_progress

    def report_then_wait(run, stage: str, percent: int) -> None:
        report(run, stage, percent)
        time.sleep(delay_ms / 1000.0)

    execution.report_progress = report_then_wait
    report_many = execution.report_progress_many

    def report_many_then_wait(runs, stage: str, percent: int) -> dict:
        stopped = report_many(runs, stage, percent)
        time.sleep(delay_ms / 1000.0)
        return stopped

    execution.report_progress_many = report_many_then_wait
    logger.warning("test worker: each progress report waits %d ms", delay_ms)
