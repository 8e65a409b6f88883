from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "editplatform.core"
    label = "core"
    verbose_name = "Platform core"
