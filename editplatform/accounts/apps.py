from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "editplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.db.models.signals import post_migrate

        # audit action names, sign-in events, role-change events, OpenAPI scheme
        from editplatform.accounts import audit_actions, schema, sign_in_log, signals  # noqa: F401

        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(sender, **kwargs):
    """Keep the role groups and their permissions in step with the code after migrate."""
    from editplatform.accounts.roles import ensure_groups

    ensure_groups()
