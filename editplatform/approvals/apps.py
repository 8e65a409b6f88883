from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "editplatform.approvals"
    label = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from editplatform.approvals import audit_actions  # noqa: F401 - registers its audit names
