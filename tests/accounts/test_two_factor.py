"""TOTP two-factor sign-in is enforced for approvers, reviewers and admins only."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.conftest import PASSWORD, current_code


def sign_in(client, user):
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["approver", "reviewer", "admin"])
def test_roles_that_change_outcomes_must_verify_a_second_factor(client, make_user, role):
    user = make_user(role, with_totp=True)
    sign_in(client, user)
    home = client.get("/")
    assert home.status_code == 302 and home["Location"].startswith("/account/2fa/")
    api = client.get("/api/v1/schema")
    assert api.status_code == 403 and b"two-factor" in api.content
    wrong = client.post("/account/2fa/?next=/", {"token": "000000" if current_code(user) != "000000" else "111111"})
    assert wrong.status_code == 200 and b"not valid" in wrong.content
    assert client.get("/").status_code == 302
    # django-otp throttles a device after a failure; the next code must wait it out.
    throttled = client.post("/account/2fa/?next=/", {"token": current_code(user)})
    assert throttled.status_code == 200 and b"Too many attempts" in throttled.content
    TOTPDevice.objects.get(user=user).throttle_reset()
    right = client.post("/account/2fa/?next=/", {"token": current_code(user)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_requesters_sign_in_without_a_second_factor(client, make_user):
    user = make_user("requester")
    sign_in(client, user)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_first_sign_in_enrols_a_totp_device(client, make_user):
    user = make_user("approver")
    sign_in(client, user)
    page = client.get("/account/2fa/")
    assert page.status_code == 200 and b"<svg" in page.content and b"totp-secret" in page.content
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    response = client.post("/account/2fa/", {"token": current_code(user, confirmed=False)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_next_parameter_cannot_redirect_off_site(client, make_user):
    user = make_user("reviewer", with_totp=True)
    sign_in(client, user)
    response = client.post("/account/2fa/?next=https://evil.example/", {"token": current_code(user)})
    assert response.status_code == 302 and response["Location"] == "/"
