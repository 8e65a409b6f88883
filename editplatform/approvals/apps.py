from django.apps import AppConfig

from editplatform.jobs import approval_hook


class ApprovalsConfig(AppConfig):
    name = "editplatform.approvals"
    label = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # The jobs layer asks "is this job approved?" through its hook; without this
        # registration every job that needs an approval stays unapproved (fail closed).
        # Imported here: the rules use models, which exist only once apps are ready.
        from editplatform.approvals import (
            audit_actions,  # noqa: F401 - registers its audit names
            services,
        )

        approval_hook.register(services.approval_satisfied)
