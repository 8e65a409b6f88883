"""The Celery app of the soak's workers: the platform's app plus test-only fault knobs.

Production code has none of these; a soak worker runs ``-A tests.soak.worker_app``:

* every progress report waits TEST_PROGRESS_DELAY_MS (tests/jobs/slow_worker.py), so a
  job lasts long enough for a SIGKILL or SIGSTOP to land in the middle of it;
* while the file named by SOAK_STORAGE_FAULT exists, every artifact write raises
  OSError (a full disk or a refusing object store);
* SOAK_BREAK=lease turns off the lease fence (a deliberately broken build): a run that
  lost its lease still commits. The soak's checker must then fail; tests/soak proves it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery.signals import worker_process_init

import tests.jobs.slow_worker  # noqa: F401 - registers the slow-progress hook
from editplatform.celery import app

__all__ = ("app",)
logger = logging.getLogger(__name__)


@worker_process_init.connect(weak=False, dispatch_uid="tests.soak.faults")
def _install_faults(**_kwargs) -> None:
    flag = os.environ.get("SOAK_STORAGE_FAULT")
    if flag:
        _refuse_writes_while(Path(flag))
    if os.environ.get("SOAK_BREAK") == "lease":
        _break_lease_fence()


def _refuse_writes_while(flag: Path) -> None:
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    if default_storage._wrapped is empty:
        default_storage._setup()
    storage = default_storage._wrapped
    original_save = storage._save

    def save(name, content):
        if flag.exists():
            raise OSError(28, "No space left on device (soak fault: storage refuses writes)")
        return original_save(name, content)

    storage._save = save
    logger.warning("soak worker: artifact writes fail while %s exists", flag)


def _break_lease_fence() -> None:
    from django.utils import timezone

    from editplatform.jobs import execution
    from editplatform.jobs.models import EditJob
    from editplatform.jobs.states import _STAMPS

    def unfenced(job, target, *, sources=None, fence=None, where=None, now=None, **fields):
        # Broken on purpose: an unconditional UPDATE (no lease, no source state).
        now = now or timezone.now()
        values = {"state": target, "updated_at": now, **fields}
        if _STAMPS.get(target) and _STAMPS[target] not in values:
            values[_STAMPS[target]] = now
        type(job).objects.filter(pk=job.pk).update(**values)
        job.refresh_from_db(fields=list(values))
        return True

    def progress_without_lease(run, stage, percent):
        EditJob.objects.filter(pk=run.job.pk).update(
            progress=max(0, min(99, percent)), stage=stage[:40]
        )

    execution.transition = unfenced
    execution.report_progress = progress_without_lease
    logger.warning("soak worker: LEASE FENCE DISABLED (SOAK_BREAK=lease)")
