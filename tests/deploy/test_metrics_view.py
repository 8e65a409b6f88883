"""Who may read /metrics: the bearer token, or loopback callers when none is set."""

from __future__ import annotations

import pytest

from editplatform.monitoring.metrics import parse

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_without_a_token_only_loopback_callers_are_served(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    values = parse(response.content.decode())
    assert ("styleledger_jobs", (("state", "queued"),)) in values
    assert values[("styleledger_scrape_ok", (("part", "jobs"),))] == 1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    # Through a proxy the peer is loopback, the caller is not.
    assert (
        client.get(
            "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"
        ).status_code
        == 403
    )


def test_with_a_token_the_bearer_header_is_required(client, settings):
    settings.METRICS_TOKEN = "t0ken-for-scrapers"
    refused = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    ok = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer t0ken-for-scrapers"
    )
    assert ok.status_code == 200 and b"styleledger_audit_log_size" in ok.content
