from django.apps import AppConfig

from editplatform.jobs import model_source


class ModelsRegistryConfig(AppConfig):
    name = "editplatform.models_registry"
    label = "models_registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The jobs layer asks "which bundle serves this version?" through its hook; without
        # this registration it keeps using settings.MODEL_BUNDLE (the pre-registry behaviour).
        from editplatform.models_registry import (
            audit_actions,  # noqa: F401 - registers its audit names
            resolver,
        )

        model_source.register(resolver.resolve, resolver.still_active)
