"""Celery wiring owned by the jobs app: task names and routes, the sweeper's and the
held-output expiry's beat entries, model preloading.

Registered from ``JobsConfig.ready()`` so editplatform/celery.py stays generic. The
task names live here (not in the task module) so the web side can send a task by name
without importing the worker's code.
"""

from __future__ import annotations

import logging

from celery.signals import celeryd_after_setup, worker_process_init
from django.conf import settings

from editplatform.celery import app, register_periodic
from editplatform.jobs import engine

logger = logging.getLogger(__name__)

RUN_EDIT_JOB = "jobs.run_edit_job"
SWEEP = "jobs.sweep"
EXPIRE_HELD = "jobs.expire_held"


def register() -> None:
    register_periodic("jobs-sweep", SWEEP, settings.JOB_SWEEP_INTERVAL_SECONDS)
    # Held outputs nobody decided within APPROVAL_TTL_HOURS are destroyed (same cadence).
    register_periodic("jobs-expire-held", EXPIRE_HELD, settings.JOB_SWEEP_INTERVAL_SECONDS)
    routes = dict(app.conf.task_routes or {})
    routes.update(
        {
            RUN_EDIT_JOB: {"queue": "gpu", "routing_key": "gpu"},
            SWEEP: {"queue": "default", "routing_key": "default"},
            EXPIRE_HELD: {"queue": "default", "routing_key": "default"},
        }
    )
    app.conf.task_routes = routes
    celeryd_after_setup.connect(_note_queues, weak=False, dispatch_uid="jobs.note_queues")
    worker_process_init.connect(_preload_model, weak=False, dispatch_uid="jobs.preload_model")


_consumes_gpu = False  # set in the worker's main process before its pool forks


def _note_queues(sender=None, instance=None, **_kwargs) -> None:
    """Remember whether this worker consumes ``gpu`` (after ``-Q``): only those run jobs,
    so only those warm the model up (a CPU worker for the beat's duties has no use for it)."""
    global _consumes_gpu
    _consumes_gpu = "gpu" in instance.app.amqp.queues.consume_from


def _should_warm_up() -> bool:
    return settings.JOB_WARM_UP == "always" or (settings.JOB_WARM_UP == "auto" and _consumes_gpu)


def _preload_model(**_kwargs) -> None:
    """Load the bundle in each pool child at start and warm it up
    (:mod:`editplatform.jobs.warm_up`), so the first job pays for neither."""
    from editplatform.jobs.warm_up import warm_up

    try:
        inverter = engine.get_inverter()
    except Exception:  # the task reports it as a transient fault, with retries
        logger.warning("could not preload the model bundle; jobs will retry", exc_info=True)
        return
    if _should_warm_up():
        warm_up(inverter, settings.JOB_BATCH_SIZE)
    else:
        logger.info(
            "model warm-up skipped (JOB_WARM_UP=%s, gpu queue not consumed)", settings.JOB_WARM_UP
        )
