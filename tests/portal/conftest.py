"""People per role for the portal pages (privileged roles with a confirmed TOTP device)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.roles import ensure_groups
from tests.accounts.conftest import current_code
from tests.conftest import login, mark_two_factor_verified

PASSWORD = "portal pages for every role"
TOTP_ROLES = ("approver", "reviewer", "admin")


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def person(username: str, role: str | None, *, email: str = ""):
    user = get_user_model().objects.create_user(username, password=PASSWORD, email=email)
    if role:
        user.groups.add(ensure_groups()[role])
    if role == "admin":
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if role in TOTP_ROLES:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        mark_two_factor_verified(client, user)
    return client


def sign_in(page, live_server, user) -> None:
    """Password, then the current TOTP code where the account has a device."""
    login(page, live_server, user.username, PASSWORD)
    if "/account/2fa/" in page.url:
        page.fill("#id_token", current_code(user))
        page.click("main button[type=submit]")
        page.wait_for_load_state("networkidle")
    assert "/account/2fa/" not in page.url and "/login/" not in page.url, page.url
