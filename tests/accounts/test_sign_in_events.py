"""Sign-in events (issue 11, items 3 and 9): bounded failures, lockouts, client address.

The attack: anonymous failed sign-ins each wrote a permanent event (unbounded log
growth, user-chosen strings in subjects); behind a reverse proxy every client shared
one address, so one attacker locked everybody out and key allow-lists were useless.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from audit.models import AuditEvent
from editplatform.accounts.models import SignInFailureWindow
from editplatform.core.middleware import client_ip
from tests.accounts.conftest import PASSWORD

PROXY = "10.0.0.5"


def failed_events():
    return list(AuditEvent.objects.filter(action="user.login_failed").order_by("seq"))


@pytest.mark.django_db
def test_failures_from_one_address_are_one_event_per_window(settings):
    settings.AXES_FAILURE_LIMIT = 1000  # count failures, no lockout, for this test
    settings.LOGIN_FAILURE_EVENT_WINDOW_SECONDS = (
        10**9
    )  # one window (2001-2033): no boundary mid-test
    before = len(failed_events())
    client = Client(REMOTE_ADDR="198.51.100.7")
    for n in range(30):
        assert (
            client.post("/login/", {"username": f"guess/{n}", "password": "nope"}).status_code
            == 200
        )
    new = failed_events()[before:]
    assert len(new) == 1
    assert new[0].subject == "address:198.51.100.7" and new[0].payload["username"] == "guess/0"
    window = SignInFailureWindow.objects.get(address="198.51.100.7", kind="login")
    assert window.count == 30 and len(window.usernames) == 5
    Client(REMOTE_ADDR="198.51.100.8").post("/login/", {"username": "x", "password": "nope"})
    assert len(failed_events()[before:]) == 2


@pytest.mark.django_db
def test_the_next_window_carries_the_previous_count(settings):
    settings.AXES_FAILURE_LIMIT = 1000
    settings.LOGIN_FAILURE_EVENT_WINDOW_SECONDS = 1
    import time

    client = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(3):
        client.post("/login/", {"username": "eve", "password": "nope"})
    time.sleep(1.1 - (time.time() % 1))
    client.post("/login/", {"username": "eve", "password": "nope"})
    last = AuditEvent.objects.filter(
        action="user.login_failed", subject="address:198.51.100.9"
    ).order_by("-seq")[0]
    assert last.payload["previous_window"]["count"] >= 1
    total = sum(w.count for w in SignInFailureWindow.objects.filter(address="198.51.100.9"))
    assert total == 4


@pytest.mark.django_db
def test_lockout_is_an_event(make_user):
    user = make_user("requester")
    client = Client(REMOTE_ADDR="198.51.100.10")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    assert (
        client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 429
    )
    event = AuditEvent.objects.get(action="user.locked_out", subject="address:198.51.100.10")
    assert event.payload["username"] == user.username


def request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_client_address_without_trusted_proxies_ignores_forwarded_for(settings):
    settings.TRUSTED_PROXY_CIDRS = []
    assert client_ip(request("203.0.113.1", "1.2.3.4")) == "203.0.113.1"


def test_client_address_is_walked_right_to_left_through_trusted_proxies(settings):
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/24", "172.16.0.0/12"]
    # The client wrote a fake first entry; the proxies appended the real one.
    assert client_ip(request(PROXY, "6.6.6.6, 203.0.113.9, 172.16.3.4")) == "203.0.113.9"
    assert client_ip(request(PROXY, "203.0.113.9")) == "203.0.113.9"
    assert client_ip(request(PROXY)) == PROXY
    assert client_ip(request(PROXY, "not-an-ip")) == PROXY
    assert client_ip(request(PROXY, "[2001:db8::1]:443")) == "2001:db8::1"
    # An untrusted peer's X-Forwarded-For is the client's own claim.
    assert client_ip(request("203.0.113.50", "10.0.0.9")) == "203.0.113.50"


@pytest.mark.django_db
def test_lockout_behind_a_proxy_locks_the_attacker_not_everyone(settings, make_user):
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/24"]
    settings.AXES_LOCKOUT_PARAMETERS = ["ip_address"]
    attacker = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.66")
    for n in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/login/", {"username": f"spray{n}", "password": "wrong"})
    user = make_user("requester")
    assert (
        attacker.post("/login/", {"username": user.username, "password": PASSWORD}).status_code
        == 429
    )
    honest = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.77")
    assert (
        honest.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    )


@pytest.mark.django_db
def test_key_allow_list_uses_the_client_address_behind_the_proxy(settings):
    from django.contrib.auth import get_user_model

    from editplatform.accounts.roles import ensure_groups
    from editplatform.accounts.services import create_api_key

    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/24"]
    svc = get_user_model().objects.create_user("svc-proxy", password=None)
    svc.groups.add(ensure_groups()["integration"])
    _key, raw = create_api_key(
        svc, name="crm", scopes=["jobs:read"], allowed_networks=["203.0.113.0/28"]
    )

    def get(forwarded):
        client = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client.get("/api/v1/jobs").status_code

    assert get("203.0.113.2") == 200
    assert get("198.51.100.1") == 403
    assert get("203.0.113.2, 198.51.100.1") == 403  # the client cannot prepend its way in
