from django.apps import AppConfig


class RetentionConfig(AppConfig):
    """Top layer: shreds through jobs, reads the log; nothing below imports it.

    It hands jobs its legal-hold guard (so no shredding path ignores a hold) and the
    beat its periodic retention run.
    """

    name = "editplatform.retention"
    label = "retention"
    verbose_name = "Retention and erasure"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from editplatform.celery import register_periodic
        from editplatform.jobs import shredding
        from editplatform.retention import audit_actions  # noqa: F401 - registers its audit names
        from editplatform.retention.holds import hold_guard
        from editplatform.retention.tasks import RUN_RETENTION

        shredding.register_guard(hold_guard)
        register_periodic("retention-run", RUN_RETENTION, settings.RETENTION_INTERVAL_SECONDS)
