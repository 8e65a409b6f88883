from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "editplatform.core"
    label = "core"
    verbose_name = "Platform core"

    def ready(self) -> None:
        from django.core import checks

        from editplatform.core.crypto import check_kek

        checks.register(check_kek)
