from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "editplatform.approvals"
    label = "approvals"
    verbose_name = "Approvals"
