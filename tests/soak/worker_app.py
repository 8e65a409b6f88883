"""The Celery app of the soak's workers: the platform's app plus test-only fault knobs.

Production code has none of these; a soak worker runs ``-A tests.soak.worker_app``:

* every progress report waits TEST_PROGRESS_DELAY_MS (tests/jobs/slow_worker.py), so a
  job lasts long enough for a SIGKILL or SIGSTOP to land in the middle of it;
* while the file named by SOAK_STORAGE_FAULT exists, every artifact write raises
  OSError (a full disk or a refusing object store);
* SOAK_BREAK=lease|acks|redelivery (set only by `python -m tests.soak --break`, guarded by
  tests/soak/breakage.py: the worker refuses to start unless the soak run asked for it)
  breaks a guarantee on purpose: `lease` turns off the lease fence (a run that lost its
  lease still commits); `redelivery` acknowledges the edit task on receipt and never hands
  a killed worker's message back (the harness then runs no sweeper either); `acks` does
  that with the sweeper left on. The soak's checker must fail on `lease` and `redelivery`;
  tests/soak proves it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery.signals import worker_init, worker_process_init

import tests.jobs.slow_worker  # noqa: F401 - registers the slow-progress hook
from editplatform.celery import app
from tests.soak.breakage import authorised_break

__all__ = ("app",)
logger = logging.getLogger(__name__)
# Raises BreakRefused (the worker does not start) when SOAK_BREAK is set outside a soak
# run that asked for it.
BREAK = authorised_break(dict(os.environ))


@worker_init.connect(weak=False, dispatch_uid="tests.soak.break_main")
def _break_main_process(**_kwargs) -> None:
    if BREAK in ("acks", "redelivery"):
        _ack_early()  # the main process acknowledges messages


@worker_process_init.connect(weak=False, dispatch_uid="tests.soak.faults")
def _install_faults(**_kwargs) -> None:
    flag = os.environ.get("SOAK_STORAGE_FAULT")
    if flag:
        _refuse_writes_while(Path(flag))
    if BREAK == "lease":
        _break_lease_fence()
    elif BREAK in ("acks", "redelivery"):
        _ack_early()


def _ack_early() -> None:
    """Broken on purpose: the edit task is acknowledged when received and a message whose
    worker died is not handed back (the opposite of editplatform/celery.py's defaults)."""
    from editplatform.jobs.worker_hooks import RUN_EDIT_JOB

    app.conf.task_acks_late = False
    app.conf.task_reject_on_worker_lost = False
    task = app.tasks[RUN_EDIT_JOB]
    task.acks_late = False
    task.reject_on_worker_lost = False
    logger.warning("soak worker: ACKS EARLY, NO REDELIVERY ON WORKER LOSS (SOAK_BREAK=%s)", BREAK)


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

    delay = int(os.environ.get("TEST_PROGRESS_DELAY_MS", "0")) / 1000.0

    def progress_without_lease(run, stage, percent):
        EditJob.objects.filter(pk=run.job.pk).update(
            progress=max(0, min(99, percent)), stage=stage[:40]
        )
        time.sleep(delay)  # keeps tests/jobs/slow_worker.py's delay, which this replaces

    execution.transition = unfenced
    execution.report_progress = progress_without_lease
    logger.warning("soak worker: LEASE FENCE DISABLED (SOAK_BREAK=lease)")
