from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "editplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.db.models.signals import post_migrate

        from editplatform.accounts import (  # noqa: F401 - audit hooks, OpenAPI scheme
            account_signals,
            audit_events,
            schema,
            sign_in,
            signals,
        )

        audit_events.register()

        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(sender, **kwargs):
    """Keep the role groups and their permissions in step with the code after migrate."""
    from editplatform.accounts.roles import ensure_groups

    ensure_groups()
