"""The public check is rate-limited per client IP: 429 naming the limit, nothing recorded."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.provenance.conftest import png_bytes

URL = "/api/v1/provenance/public-check"


def _checks() -> int:
    return AuditEvent.objects.filter(action="provenance.checked").count()


def _post(client: APIClient, data: bytes, **extra):
    upload = SimpleUploadedFile("photo.png", data, content_type="application/octet-stream")
    return client.post(URL, {"image": upload}, format="multipart", **extra)


@pytest.fixture
def public_check(settings):
    settings.PROVENANCE_PUBLIC_CHECK = True
    settings.PROVENANCE_PUBLIC_CHECK_RATE = "2/minute"
    settings.PROVENANCE_PUBLIC_CHECK_PROXIES = 0
    caches[settings.PROVENANCE_THROTTLE_CACHE].clear()
    return settings


@pytest.mark.postgres
@pytest.mark.django_db
def test_public_check_answers_429_past_the_rate_per_client_address(public_check):
    client = APIClient()
    image = png_bytes(Image.new("RGB", (64, 48), (90, 120, 30)))
    before = _checks()
    for _ in range(2):
        assert _post(client, image, REMOTE_ADDR="203.0.113.7").status_code == 200
    # A forged X-Forwarded-For does not make a new client while no proxy is trusted.
    refused = _post(client, image, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert refused.status_code == 429, refused.content
    body = refused.json()
    assert body["code"] == "throttled"
    assert "at most 2/minute" in body["detail"] and "PROVENANCE_PUBLIC_CHECK_RATE" in body["detail"]
    assert "Expected available in" in body["detail"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert _checks() == before + 2  # the refused check was not analysed or recorded

    # Another address has its own budget.
    assert _post(client, image, REMOTE_ADDR="203.0.113.8").status_code == 200
    assert _checks() == before + 3


@pytest.mark.postgres
@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(public_check):
    public_check.PROVENANCE_PUBLIC_CHECK_PROXIES = 1
    client = APIClient()
    image = png_bytes(Image.new("RGB", (64, 48), (10, 20, 200)))
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    # The client wrote the first entry itself; the proxy appended what it saw.
    for forged in ("1.1.1.1", "2.2.2.2"):
        ok = _post(client, image, HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.9", **proxy)
        assert ok.status_code == 200
    third = _post(client, image, HTTP_X_FORWARDED_FOR="3.3.3.3, 203.0.113.9", **proxy)
    assert third.status_code == 429
    # Other clients behind the same proxy are not affected.
    assert _post(client, image, HTTP_X_FORWARDED_FOR="203.0.113.10", **proxy).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db
def test_nothing_is_counted_while_the_public_check_is_off(public_check):
    public_check.PROVENANCE_PUBLIC_CHECK = False
    client = APIClient()
    image = png_bytes(Image.new("RGB", (64, 48)))
    assert [_post(client, image).status_code for _ in range(3)] == [404, 404, 404]
