"""Integration API keys: hashed storage, scopes, expiry, revocation, IP allow-list, quota."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from editplatform.accounts.models import IntegrationKey
from editplatform.accounts.roles import ensure_groups
from editplatform.accounts.services import AccountError, create_api_key, revoke_api_key
from tests import catalog
from tests.jobs import images


def png_bytes(shade: int = 120) -> bytes:
    """A catalogue photo in the demo model's domain (tests.jobs.images), one per shade."""
    return images.png((40, 40), seed=shade)


@pytest.fixture
def service_account(db):
    user = get_user_model().objects.create_user("svc-crm", password=None)
    user.groups.add(ensure_groups()["integration"])
    return user


def client_with(raw_key: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def submit(client, shade=120):
    return client.post(
        "/api/v1/jobs",
        {
            "image": io.BytesIO(png_bytes(shade)),
            "edits": catalog.request_json(),
            "purpose": "CRM avatar refresh",
            "consent": "true",
        },
        format="multipart",
    )


def test_only_a_hash_of_the_key_is_stored(service_account):
    key, raw = create_api_key(service_account, name="crm", scopes=["jobs:read"])
    prefix, _, secret = raw.partition(".")
    assert key.prefix == prefix and len(secret) >= 32
    stored = IntegrationKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())
    assert stored["hashed_key"].startswith("sha512$$") and raw not in stored["hashed_key"]
    assert AuditEvent.objects.filter(action="apikey.created", subject=f"apikey:{prefix}").exists()


def test_keys_are_only_for_integration_accounts(db):
    person = get_user_model().objects.create_user("alice", password="x" * 20)
    with pytest.raises(AccountError, match="not an integration"):
        create_api_key(person, name="sneaky", scopes=["jobs:read"])


def test_unknown_scope_is_refused(service_account):
    with pytest.raises(AccountError, match="unknown scope"):
        create_api_key(service_account, name="crm", scopes=["jobs:admin"])


def test_scopes_limit_what_a_key_may_do(service_account, model_bundle):
    _, reader = create_api_key(service_account, name="reader", scopes=["jobs:read"])
    _, writer = create_api_key(service_account, name="writer", scopes=["jobs:write"])
    _, auditor = create_api_key(service_account, name="auditor", scopes=["audit:read"])
    assert client_with(reader).get("/api/v1/jobs").status_code == 200
    forbidden = submit(client_with(reader))
    assert forbidden.status_code == 403 and "jobs:write" in forbidden.json()["detail"]
    assert submit(client_with(writer)).status_code == 201
    assert client_with(writer).get("/api/v1/jobs").status_code == 403
    assert client_with(auditor).get("/api/v1/jobs").status_code == 403


def test_unknown_expired_or_revoked_keys_are_401(service_account):
    _, raw = create_api_key(service_account, name="crm", scopes=["jobs:read"])
    bad = client_with(raw[:-1] + ("A" if raw[-1] != "A" else "B")).get("/api/v1/jobs")
    assert bad.status_code == 401 and bad["WWW-Authenticate"] == "Api-Key"
    expired_key, expired = create_api_key(
        service_account,
        name="old",
        scopes=["jobs:read"],
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    response = client_with(expired).get("/api/v1/jobs")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    key = IntegrationKey.objects.get(prefix=raw.partition(".")[0])
    assert revoke_api_key(key, reason="rotated")
    response = client_with(raw).get("/api/v1/jobs")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert AuditEvent.objects.filter(
        action="apikey.revoked", subject=f"apikey:{key.prefix}"
    ).exists()


def test_ip_outside_the_allow_list_is_403(service_account):
    _, raw = create_api_key(
        service_account, name="crm", scopes=["jobs:read"], allowed_networks=["10.1.0.0/16"]
    )
    assert client_with(raw, "10.1.2.3").get("/api/v1/jobs").status_code == 200
    response = client_with(raw, "10.2.0.1").get("/api/v1/jobs")
    assert response.status_code == 403 and "10.2.0.1" in response.json()["detail"]


def test_quota_answers_429_with_retry_after(service_account, model_bundle):
    _, raw = create_api_key(
        service_account, name="crm", scopes=["jobs:write", "jobs:read"], jobs_per_hour=2
    )
    client = client_with(raw)
    assert submit(client, 10).status_code == 201
    assert submit(client, 20).status_code == 201
    limited = submit(client, 30)
    assert limited.status_code == 429
    retry_after = int(limited["Retry-After"])
    assert 0 < retry_after <= 3600
    # reads are not counted against the job quota
    assert client.get("/api/v1/jobs").status_code == 200


def test_last_used_time_is_updated(service_account):
    key, raw = create_api_key(service_account, name="crm", scopes=["jobs:read"])
    assert key.last_used_at is None
    before = timezone.now()
    assert client_with(raw).get("/api/v1/jobs").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at >= before


def test_an_integration_cannot_use_the_portal(client, service_account):
    assert not service_account.has_usable_password()
    response = client.post("/login/", {"username": service_account.username, "password": ""})
    assert response.status_code == 200 and client.get("/").status_code == 302


def test_apikeys_command_creates_lists_and_revokes(service_account, capsys):
    call_command(
        "apikeys",
        "create",
        "--account",
        service_account.username,
        "--name",
        "cli",
        "--scopes",
        "jobs:read",
        "--expires-days",
        "30",
        "--allow-ip",
        "192.0.2.0/24",
    )
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    key = IntegrationKey.objects.get_from_key(raw)
    assert key.allowed_networks == ["192.0.2.0/24"] and key.expiry_date > timezone.now()
    call_command("apikeys", "revoke", key.prefix, "--reason", "test")
    key.refresh_from_db()
    assert key.revoked
