from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "editplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.db.models.signals import post_migrate

        # audit action names, sign-in events, account and role-change events, OpenAPI scheme
        from editplatform.accounts import (  # noqa: F401
            account_signals,
            audit_actions,
            audit_events,
            schema,
            sign_in,
            signals,
        )

        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(sender, using="default", **kwargs):
    """Keep the role groups and their permissions in step with the code after migrate.

    This app comes first in INSTALLED_APPS (its `createsuperuser` must win), so the
    other apps' permissions are created here before the roles are granted them.
    """
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    from editplatform.accounts.roles import ensure_groups

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    ensure_groups()
