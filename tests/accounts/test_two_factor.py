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
    wrong = client.post(
        "/account/2fa/?next=/", {"token": "000000" if current_code(user) != "000000" else "111111"}
    )
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
def test_first_sign_in_of_a_privileged_role_needs_an_admin_issued_enrolment_code(client, make_user):
    from audit.models import AuditEvent
    from editplatform.accounts.recovery import issue_enrolment_code

    user = make_user("approver")
    admin = make_user("admin")
    sign_in(client, user)
    page = client.get("/account/2fa/")
    # The password alone shows no secret and binds no device.
    assert (
        page.status_code == 200
        and b"Enrolment code" in page.content
        and b"totp-secret" not in page.content
    )
    assert not TOTPDevice.objects.filter(user=user).exists()
    refused = client.post("/account/2fa/", {"enrolment_code": "made-up-code"})
    assert refused.status_code == 200 and b"not valid" in refused.content
    assert AuditEvent.objects.filter(action="user.2fa_failed", subject=f"user:{user.pk}").exists()
    code = issue_enrolment_code(user, by=admin)
    issued = AuditEvent.objects.get(
        action="account.enrolment_code_issued", subject=f"user:{user.pk}"
    )
    assert issued.actor_name == admin.username and code not in str(issued.entry)
    step = client.post("/account/2fa/", {"enrolment_code": code})
    assert step.status_code == 302
    page = client.get("/account/2fa/")
    assert page.status_code == 200 and b"<svg" in page.content and b"totp-secret" in page.content
    # Shown once: a reload makes a new secret, the one shown before is dead.
    first_key = TOTPDevice.objects.get(user=user).key
    client.get("/account/2fa/")
    assert TOTPDevice.objects.get(user=user).key != first_key
    assert not AuditEvent.objects.filter(action="user.login", subject=f"user:{user.pk}").exists()
    response = client.post("/account/2fa/", {"token": current_code(user, confirmed=False)})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=user).confirmed
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="user.2fa_enrolled", subject=f"user:{user.pk}").exists()
    assert AuditEvent.objects.filter(action="user.login", subject=f"user:{user.pk}").count() == 1
    # The code worked once: a second session cannot enrol with it.
    client.post("/logout/")
    TOTPDevice.objects.filter(user=user).delete()
    other = type(client)()
    sign_in(other, user)
    again = other.post("/account/2fa/", {"enrolment_code": code})
    assert again.status_code == 200 and b"not valid" in again.content


@pytest.mark.django_db
def test_a_requester_may_enrol_voluntarily_without_a_code(client, make_user):
    user = make_user("requester")
    sign_in(client, user)
    page = client.get("/account/2fa/")
    assert page.status_code == 200 and b"totp-secret" in page.content
    assert (
        client.post("/account/2fa/", {"token": current_code(user, confirmed=False)}).status_code
        == 302
    )
    assert TOTPDevice.objects.get(user=user).confirmed


@pytest.mark.django_db
def test_user_login_is_written_only_after_the_second_factor(client, make_user):
    from audit.models import AuditEvent

    user = make_user("reviewer", with_totp=True)
    sign_in(client, user)
    assert not AuditEvent.objects.filter(action="user.login", subject=f"user:{user.pk}").exists()
    wrong = "000000" if current_code(user) != "000000" else "111111"
    client.post("/account/2fa/", {"token": wrong})
    failed = AuditEvent.objects.get(action="user.2fa_failed", subject=f"user:{user.pk}")
    assert failed.actor_name == user.username and failed.payload["reason"] == "wrong code"
    TOTPDevice.objects.get(user=user).throttle_reset()
    assert client.post("/account/2fa/", {"token": current_code(user)}).status_code == 302
    login = AuditEvent.objects.get(action="user.login", subject=f"user:{user.pk}")
    assert login.payload["second_factor"] == "totp"


@pytest.mark.django_db
def test_next_parameter_cannot_redirect_off_site(client, make_user):
    user = make_user("reviewer", with_totp=True)
    sign_in(client, user)
    response = client.post(
        "/account/2fa/?next=https://evil.example/", {"token": current_code(user)}
    )
    assert response.status_code == 302 and response["Location"] == "/"
