"""GET /metrics for Prometheus: a bearer token, or loopback only when none is set."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from editplatform.monitoring.metrics import scrape

_LOOPBACK = {"127.0.0.1", "::1"}


def _allowed(request) -> tuple[bool, str]:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True, ""
        return False, "metrics need 'Authorization: Bearer <METRICS_TOKEN>'"
    if request.META.get("REMOTE_ADDR") in _LOOPBACK and "HTTP_X_FORWARDED_FOR" not in request.META:
        return True, ""
    return False, "set METRICS_TOKEN to scrape metrics from another host"


@never_cache
@require_GET
def metrics(request):
    ok, reason = _allowed(request)
    if not ok:
        response = HttpResponse(
            reason + "\n", status=401 if settings.METRICS_TOKEN else 403, content_type="text/plain"
        )
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = "Bearer"
        return response
    body, _seconds = scrape()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
