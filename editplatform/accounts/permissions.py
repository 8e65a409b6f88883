"""Scope checks for API-key requests.

A view declares `required_scopes`, a mapping from HTTP method to scope (or one scope
for all methods). Requests authenticated by an API key must hold that scope (403
otherwise). Session-authenticated people are judged by their roles elsewhere; this
class only narrows what a key may do.
"""

from __future__ import annotations

from rest_framework import permissions

from editplatform.accounts.models import IntegrationKey


def required_scope(view, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        return None
    if isinstance(scopes, str):
        return scopes
    return scopes.get(method) or scopes.get("*")


class HasScope(permissions.BasePermission):
    message = "this API key lacks the scope this endpoint needs"

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, IntegrationKey):
            return True
        scope = required_scope(view, request.method)
        if scope is None:
            # Endpoints that declare no scope are not for integrations.
            self.message = "this endpoint is not available to API keys"
            return False
        if not key.has_scope(scope):
            self.message = f"this API key lacks the scope {scope!r}"
            return False
        return True
