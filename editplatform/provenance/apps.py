from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "editplatform.provenance"
    label = "provenance"
    verbose_name = "Provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from editplatform.provenance import audit_actions  # noqa: F401  (registers actions)
