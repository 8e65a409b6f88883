"""Item 6: each role's home page, styled error pages, the admin link, the API-key form,
and voluntary two-factor authentication from the account page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.models import IntegrationKey
from editplatform.accounts.recovery import reset_two_factor
from tests.accounts.conftest import current_code
from tests.conftest import login
from tests.portal.conftest import PASSWORD, client_for, person


def _html(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


@pytest.mark.django_db
def test_home_shows_each_role_what_it_does_next():
    requester, approver = person("rene", "requester"), person("ada", "approver")
    reviewer, admin, other_admin = person("ravi", "reviewer"), person("adele", "admin"), person("arvo", "admin")
    page = _html(client_for(requester), "/")
    assert 'id="home-requester"' in page and 'href="/jobs/new/"' in page and "No jobs yet." in page
    assert 'id="home-approver"' not in page and 'id="nav-admin"' not in page
    page = _html(client_for(approver), "/")
    assert 'id="home-approver"' in page and 'id="home-queue-count">0<' in page and 'href="/approvals/"' in page
    assert 'id="home-requester"' not in page
    page = _html(client_for(reviewer), "/")
    assert 'id="home-reviewer"' in page and 'href="/audit/verify/"' in page and 'id="home-requester"' not in page
    # The admin: the admin site (nav and home), and recoveries a second admin must confirm.
    reset_two_factor(reviewer, by=other_admin)
    page = _html(client_for(admin), "/")
    assert 'id="nav-admin"' in page and 'id="home-admin-site"' in page
    assert 'id="home-recoveries"' in page and "ravi" in page
    # ...never the one the admin opened themselves.
    assert 'id="home-no-recoveries"' in _html(client_for(other_admin), "/")
    nobody = person("nemo", None)
    assert 'id="home-no-role"' in _html(client_for(nobody), "/")


@pytest.mark.django_db
def test_error_pages_are_styled_with_navigation_and_a_way_back(client):
    requester = person("erin", "requester")
    c = client_for(requester)
    page = _html(c, "/no/such/page/", 404)
    assert 'id="error-page"' in page and 'data-status="404"' in page
    assert 'id="error-home" href="/"' in page and 'href="/jobs/"' in page  # the navigation
    page = _html(c, "/approvals/", 403)
    assert 'data-status="403"' in page and "portal.css" in page and 'id="nav-notifications"' in page
    assert 'data-status="404"' in _html(client, "/nothing-here/", 404)  # anonymous, too
    from django.template.loader import render_to_string

    for code in ("400", "500"):
        html = render_to_string(f"{code}.html")  # as Django's handlers render them
        assert f'data-status="{code}"' in html and 'href="/"' in html and "portal.css" in html


def _key_form_data(account, **overrides):
    data = {"name": "crm", "service_account": account.pk, "scopes": ["jobs:read", "jobs:write"],
            "allowed_networks": "203.0.113.0/24\n10.1.2.3", "jobs_per_hour": "", "expiry_date_0": "",
            "expiry_date_1": ""}
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_api_key_form_has_scope_checkboxes_and_validates_networks():
    admin = person("alma", "admin")
    service = person("svc-crm", "integration")
    client = client_for(admin)
    page = _html(client, "/admin/accounts/integrationkey/add/")
    for scope in ("jobs:read", "jobs:write", "audit:read"):
        assert f'type="checkbox" name="scopes" value="{scope}"' in page
    bad = client.post("/admin/accounts/integrationkey/add/",
                      _key_form_data(service, allowed_networks="203.0.113.0/24\n10.0.0.300/8"))
    assert bad.status_code == 200
    assert "&#x27;10.0.0.300/8&#x27; is not an IP address or network" in bad.content.decode()
    none = client.post("/admin/accounts/integrationkey/add/", _key_form_data(service, scopes=[]))
    assert "Choose at least one scope." in none.content.decode()
    assert IntegrationKey.objects.count() == 0  # nothing half-stored
    ok = client.post("/admin/accounts/integrationkey/add/", _key_form_data(service))
    assert ok.status_code == 302
    key = IntegrationKey.objects.get()
    assert key.scopes == ["jobs:read", "jobs:write"]
    assert key.allowed_networks == ["203.0.113.0/24", "10.1.2.3/32"]


@pytest.mark.django_db
def test_api_key_form_refuses_a_human_account_with_a_message():
    admin = person("alva", "admin")
    human = person("hugo", "requester")
    response = client_for(admin).post("/admin/accounts/integrationkey/add/", _key_form_data(human))
    assert response.status_code == 200
    assert "errorlist" in response.content.decode() and IntegrationKey.objects.count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_requester_turns_on_two_factor_from_the_account_page(live_server, page):
    requester = person("vera", "requester")
    login(page, live_server, requester.username, PASSWORD)
    page.click("#nav-account")
    assert "optional" in page.locator("#two-factor-off").inner_text() or \
        "does not require" in page.locator("#two-factor-off").inner_text()
    page.click("#enable-two-factor")
    assert "/account/2fa/" in page.url
    assert "optional for your role" in page.locator("#two-factor-voluntary").inner_text()
    assert "Your role requires" not in page.content()
    device = TOTPDevice.objects.get(user=requester, confirmed=False)
    page.fill("#id_token", current_code(requester, confirmed=False))
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/")
    device.refresh_from_db()
    assert device.confirmed
    assert "set up for your account and this session has been verified" in page.locator("#two-factor-on").inner_text()
    # Having chosen it, the requester is held to it at the next sign-in.
    page.click("header form button[type=submit]")
    page.wait_for_load_state("networkidle")
    login(page, live_server, requester.username, PASSWORD)
    assert "/account/2fa/" in page.url
    assert get_user_model().objects.get(pk=requester.pk).is_active
