"""Celery wiring owned by the jobs app: the sweeper's beat entry, model preloading.

Registered from ``JobsConfig.ready()`` so editplatform/celery.py stays generic.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def register() -> None:
    from celery.signals import worker_process_init

    from editplatform.celery import app, register_periodic

    register_periodic("jobs-sweep", "jobs.sweep", settings.JOB_SWEEP_INTERVAL_SECONDS)
    routes = dict(app.conf.task_routes or {})
    routes.update({"jobs.run_edit_job": {"queue": "gpu", "routing_key": "gpu"},
                   "jobs.sweep": {"queue": "default", "routing_key": "default"}})
    app.conf.task_routes = routes
    worker_process_init.connect(_preload_model, weak=False, dispatch_uid="jobs.preload_model")


def _preload_model(**_kwargs) -> None:
    """Load the bundle in each pool child at start, so the first job does not pay for it."""
    from editplatform.jobs import engine

    try:
        engine.get_inverter()
    except Exception:  # the task reports it as a transient fault, with retries
        logger.warning("could not preload the model bundle; jobs will retry", exc_info=True)
