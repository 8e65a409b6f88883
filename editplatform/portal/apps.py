from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "editplatform.portal"
    label = "portal"
    verbose_name = "Staff portal"
