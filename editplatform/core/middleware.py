"""Request ids: one id per web request, carried into Celery tasks and audit events.

A client may send `X-Request-ID` (a short token); otherwise one is generated. The id
is echoed in the response and kept in a context variable so log lines, audit events
and the task headers of jobs submitted in this request all carry it.

Also here: `client_ip`, the one answer to "which address is this request from" behind
the trusted reverse proxies of `TRUSTED_PROXY_CIDRS`.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _VALID.match(offered) else new_request_id()
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


# --- the client's address behind trusted proxies ----------------------------------

def _trusted_networks() -> tuple:
    from django.conf import settings

    networks = getattr(settings, "TRUSTED_PROXY_CIDRS", ())
    cached = _trusted_cache.get("key")
    if cached is None or cached[0] != tuple(networks):
        _trusted_cache["key"] = (tuple(networks), tuple(ipaddress.ip_network(n, strict=False) for n in networks))
    return _trusted_cache["key"][1]


_trusted_cache: dict = {}


def _parse_ip(value: str):
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_ip(request) -> str:
    """The address of the client, as far as the trusted proxies vouch for it.

    Without `TRUSTED_PROXY_CIDRS` it is the socket's peer (REMOTE_ADDR) and any
    X-Forwarded-For is ignored (a client can write that header). When the peer is a
    trusted proxy, X-Forwarded-For is walked right to left, skipping trusted proxies;
    the first untrusted address is the client (entries further left were written by the
    client itself and prove nothing). Used by the lockout (AXES_CLIENT_IP_CALLABLE),
    API key allow-lists and the sign-in events.
    """
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR", "") or ""
    trusted = _trusted_networks()
    peer = _parse_ip(remote)
    if not trusted or peer is None or not any(peer in net for net in trusted):
        return remote
    hops = [h for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    client = str(peer)
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:
            break  # garbage from the client side: stop at the last vouched address
        client = str(address)
        if not any(address in net for net in trusted):
            break
    return client


# --- security headers on static files ----------------------------------------------

def add_static_security_headers(headers, path: str, url: str) -> None:
    """WHITENOISE_ADD_HEADERS_FUNCTION: static responses (Swagger's HTML among them)
    leave whitenoise before django-csp and the frame middleware see them, so the same
    headers are set here, from the same settings."""
    from csp.utils import build_policy
    from django.conf import settings

    headers["Content-Security-Policy"] = build_policy()
    headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
    headers["Cross-Origin-Opener-Policy"] = getattr(settings, "SECURE_CROSS_ORIGIN_OPENER_POLICY", None) or "same-origin"


# --- domain errors that escape a portal view -----------------------------------------

class DomainErrorPageMiddleware:
    """A :class:`~editplatform.core.errors.DomainError` that escapes a portal view (e.g.
    the audit log refusing appends after a restore: 503) becomes a styled page with the
    error's status and message, never a 500. API views render it themselves (DRF's
    exception handler, ``editplatform.core.api``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.shortcuts import render

        from editplatform.core.errors import DomainError

        if not isinstance(exception, DomainError):
            return None
        return render(request, "core/domain_error.html", {"error": exception}, status=exception.status)
