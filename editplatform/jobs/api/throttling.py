"""Per-key hourly job quota for integrations, answered with 429 and Retry-After.

It lives with the jobs API (not with the keys in accounts) because it counts jobs.

The count comes from the jobs table (jobs submitted through this key in the last
hour), so it is exact across any number of web processes and survives restarts — no
shared cache needed. Under concurrent submits with the same key the count may be
exceeded by at most the number of requests in flight.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from editplatform.accounts.models import IntegrationKey
from editplatform.jobs.models import EditJob

WINDOW = timedelta(hours=1)


class KeyJobQuotaThrottle(BaseThrottle):
    """Applies to job submissions (POST) made with an API key that has a quota."""

    def __init__(self):
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if (
            request.method != "POST"
            or not isinstance(key, IntegrationKey)
            or key.jobs_per_hour is None
        ):
            return True
        now = timezone.now()
        recent = list(
            EditJob.objects.filter(api_key=key, created_at__gt=now - WINDOW)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[: key.jobs_per_hour]
        )
        if len(recent) < key.jobs_per_hour:
            return True
        # The quota frees up when the oldest of the last `jobs_per_hour` jobs leaves the window.
        self._wait = max(1.0, (recent[-1] + WINDOW - now).total_seconds())
        return False

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None
