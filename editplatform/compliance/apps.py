from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """Pages layer: reads jobs and the audit log; nothing below imports it."""

    name = "editplatform.compliance"
    label = "compliance"
    verbose_name = "Compliance views of jobs"

    def ready(self) -> None:
        from audit import subjects
        from editplatform.compliance import audit_actions  # noqa: F401 - registers its audit names

        subjects.register_page("job:", "compliance:job")
