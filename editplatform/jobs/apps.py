"""Edit jobs: upload, queue to GPU workers, results (portal and REST API)."""

from __future__ import annotations

from django.apps import AppConfig

from editplatform.jobs import worker_hooks


class JobsConfig(AppConfig):
    name = "editplatform.jobs"
    label = "jobs"
    verbose_name = "Edit jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The sweeper's beat entry and the worker-process hooks live with the app so a
        # deployment that installs the app gets them without editing celery.py.
        from editplatform.jobs import audit_actions  # noqa: F401 - registers its audit names

        worker_hooks.register()
        from editplatform.jobs import keyed_ids

        keyed_ids.register()  # new events record keyed commitments, not plain hashes
