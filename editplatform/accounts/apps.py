from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "editplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
