"""The Celery application shared by the web process and the GPU workers.

Queues: `gpu` runs inversion jobs (one worker process per GPU), `default` everything
else. Defaults suit long GPU tasks: each process takes one message at a time
(prefetch 1), acknowledges only after the task finished (acks late) and hands the
message back when its process dies (reject on worker lost), so a killed worker's job
is redelivered. The pool is prefork with concurrency 1: the parent never touches
CUDA, each child initialises it after the fork, which is the CUDA-safe arrangement.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "editplatform.settings")

app = Celery("editplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_queues=(
        Queue("default", Exchange("default"), routing_key="default"),
        Queue("gpu", Exchange("gpu"), routing_key="gpu"),
    ),
    task_default_queue="default",
    task_default_exchange="default",
    task_default_routing_key="default",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,
    worker_pool="prefork",
    worker_max_tasks_per_child=None,
    worker_send_task_events=False,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=5,
    task_publish_retry=True,
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
)
app.autodiscover_tasks()


def register_periodic(name: str, task: str, seconds: float, queue: str = "default") -> None:
    """Add a beat entry (apps call this from `ready()` so this module stays generic).

    A run that could not start within one period expires instead of piling up behind
    a slow worker.
    """
    schedule = dict(app.conf.beat_schedule or {})
    schedule[name] = {
        "task": task,
        "schedule": float(seconds),
        "options": {"queue": queue, "expires": float(seconds)},
    }
    app.conf.beat_schedule = schedule
