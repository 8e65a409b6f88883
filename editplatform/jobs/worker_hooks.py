"""Celery wiring owned by the jobs app: task names and routes, the sweeper's and the
held-output expiry's beat entries, model preloading.

Registered from ``JobsConfig.ready()`` so editplatform/celery.py stays generic. The
task names live here (not in the task module) so the web side can send a task by name
without importing the worker's code.
"""

from __future__ import annotations

import logging

from celery.signals import worker_process_init
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
    worker_process_init.connect(_preload_model, weak=False, dispatch_uid="jobs.preload_model")


def _preload_model(**_kwargs) -> None:
    """Load the bundle in each pool child at start and warm it up
    (:mod:`editplatform.jobs.warm_up`), so the first job pays for neither."""
    from editplatform.jobs.warm_up import warm_up

    try:
        inverter = engine.get_inverter()
    except Exception:  # the task reports it as a transient fault, with retries
        logger.warning("could not preload the model bundle; jobs will retry", exc_info=True)
        return
    warm_up(inverter, settings.JOB_BATCH_SIZE)
