"""Scope checks for API-key requests.

A view declares `required_scopes`, a mapping from HTTP method to a scope or a tuple
of scopes any one of which suffices (or one scope for all methods). Requests
authenticated by an API key must hold that scope (403 otherwise). Session-authenticated
people are judged by their roles elsewhere; this class only narrows what a key may do.
"""

from __future__ import annotations

from rest_framework import permissions

from editplatform.accounts.models import IntegrationKey


def required_scopes(view, method: str) -> tuple[str, ...]:
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        return ()
    if not isinstance(scopes, str):
        scopes = scopes.get(method) or scopes.get("*")
    if scopes is None:
        return ()
    return (scopes,) if isinstance(scopes, str) else tuple(scopes)


class HasScope(permissions.BasePermission):
    message = "this API key lacks the scope this endpoint needs"

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, IntegrationKey):
            return True
        scopes = required_scopes(view, request.method)
        if not scopes:
            # Endpoints (or methods) that declare no scope are not for integrations.
            self.message = "this endpoint is not available to API keys"
            return False
        if not any(key.has_scope(scope) for scope in scopes):
            self.message = f"this API key lacks the scope {' or '.join(repr(s) for s in scopes)}"
            return False
        return True
