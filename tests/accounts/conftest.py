"""Fixtures for accounts: users in each role, TOTP codes, API keys."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.roles import ensure_groups

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def make_user(db):
    def _make(
        role: str | None,
        username: str | None = None,
        *,
        with_totp: bool = False,
        password: str = PASSWORD,
    ):
        user = get_user_model().objects.create_user(
            username=username or f"{role or 'nobody'}-{secrets.token_hex(3)}", password=password
        )
        if role:
            user.groups.add(ensure_groups()[role])
        if with_totp:
            TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        return user

    return _make


def current_code(user, *, confirmed: bool = True) -> str:
    """The code an authenticator app would show now for the user's TOTP device."""
    device = TOTPDevice.objects.get(user=user, confirmed=confirmed)
    code = totp(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift
    )
    return f"{code:06d}"
