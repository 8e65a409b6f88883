"""A reviewer whose 2FA an admin reset re-enrols in Chromium, with an admin-issued code,
under the CSP; the secret is on the page once; reviewing waits for the second admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.models import AccountRecovery
from editplatform.accounts.recovery import confirm_recovery, issue_enrolment_code, reset_two_factor
from editplatform.accounts.roles import ensure_groups
from tests.accounts.conftest import PASSWORD, current_code
from tests.conftest import login


def person(username: str, role: str):
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=role == "admin"
    )
    user.groups.add(ensure_groups()[role])
    return user


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reset_reviewer_re_enrols_with_a_code_and_waits_for_the_second_admin(live_server, page):
    reviewer = person("rosa-b", "reviewer")
    TOTPDevice.objects.create(user=reviewer, name="old phone", confirmed=True)
    first, second = person("adm-one", "admin"), person("adm-two", "admin")
    reset_two_factor(reviewer, by=first)
    code = issue_enrolment_code(reviewer, by=first)
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    login(page, live_server, reviewer.username, PASSWORD)
    assert "/account/2fa/" in page.url
    assert page.locator("#totp-secret").count() == 0  # the password alone shows no secret
    page.fill("#id_enrolment_code", code)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    secret = page.locator("#totp-secret").inner_text()
    assert len(secret) >= 16 and page.locator(".qr svg").count() == 1
    page.fill("#id_token", current_code(reviewer, confirmed=False))
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/account/2fa/" not in page.url

    response = page.goto(f"{live_server.url}/audit/")
    assert response.status == 403  # re-enrolled, but the reset is not confirmed yet
    confirm_recovery(AccountRecovery.objects.get(user=reviewer), by=second)
    response = page.goto(f"{live_server.url}/audit/")
    assert response.status == 200
    assert violations == []
