"""Rate limit of the public "was this made here?" check, per client IP address.

The public check takes no credentials and each answer costs a watermark search (up to
about a second of CPU) and an audit event, so anyone could flood it. This throttle
answers 429 with a message naming the limit and when to retry (Retry-After header).

- Rate: `PROVENANCE_PUBLIC_CHECK_RATE` ("30/minute" by default; DRF's "<n>/<second|
  minute|hour|day>"); counts live in Django's cache (`PROVENANCE_THROTTLE_CACHE`, alias
  "default"), so they are shared across web processes when that cache is shared
  (e.g. Django's RedisCache) and per process with the local-memory default.
- Client address: REMOTE_ADDR. Behind reverse proxies set
  `PROVENANCE_PUBLIC_CHECK_PROXIES` to their number: the address is then read from
  X-Forwarded-For, that many hops from the right (what the nearest trusted proxy saw),
  never from the leftmost entry a client can write itself.
- While the public check is off (PROVENANCE_PUBLIC_CHECK) nothing is counted: the view
  answers 404 anyway.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle


class PublicCheckThrottle(SimpleRateThrottle):
    scope = "provenance_public_check"

    def __init__(self):
        self.cache = caches[settings.PROVENANCE_THROTTLE_CACHE]
        super().__init__()

    def get_rate(self) -> str:
        return settings.PROVENANCE_PUBLIC_CHECK_RATE

    def get_ident(self, request) -> str:
        proxies = settings.PROVENANCE_PUBLIC_CHECK_PROXIES
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if proxies > 0 and forwarded:
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-min(proxies, len(hops))]
        return request.META.get("REMOTE_ADDR", "")

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view) -> bool:
        if not settings.PROVENANCE_PUBLIC_CHECK:
            return True
        return super().allow_request(request, view)

    def limit_message(self) -> str:
        return (
            f"too many provenance checks from this address: at most "
            f"{settings.PROVENANCE_PUBLIC_CHECK_RATE} (PROVENANCE_PUBLIC_CHECK_RATE)."
        )
