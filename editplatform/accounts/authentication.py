"""DRF authentication by integration API key (`Authorization: Api-Key <prefix.secret>`).

Outcomes, in the order they are checked:
- unknown, malformed, revoked or expired key -> 401 (AuthenticationFailed);
- a service account that (against the rules) also holds a human role -> 403;
- request from an address outside the key's allow-list (the client address behind
  `TRUSTED_PROXY_CIDRS`) -> 403;
- otherwise the request runs as the key's service account, with `request.auth` the
  key (scopes are checked by `HasScope`), and the key's last-used time is updated.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework_api_key.permissions import KeyParser

from editplatform.accounts.models import IntegrationKey
from editplatform.accounts.roles import HUMAN_ROLE_NAMES, held_roles
from editplatform.core.middleware import client_ip

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION_SECONDS = 0  # write on every use; raise to throttle writes


class ApiKeyAuthentication(authentication.BaseAuthentication):
    parser = KeyParser()

    def authenticate(self, request):
        raw = self.parser.get(request)
        if raw is None:
            return None
        raw = raw.strip()
        try:
            key = IntegrationKey.objects.get_from_key(raw)
        except IntegrationKey.DoesNotExist:
            revoked = IntegrationKey.objects.filter(
                prefix=raw.partition(".")[0], revoked=True
            ).exists()
            raise exceptions.AuthenticationFailed(
                "API key revoked" if revoked else "invalid API key"
            ) from None
        if key.has_expired:
            raise exceptions.AuthenticationFailed("API key expired")
        user = key.service_account
        if not user.is_active:
            raise exceptions.AuthenticationFailed("the API key's service account is disabled")
        if held_roles(user) & HUMAN_ROLE_NAMES:
            # Integration accounts are integration-only; a key never carries a person's role.
            raise exceptions.PermissionDenied(
                "this API key's service account also holds a human role; keys of such accounts are "
                "refused"
            )
        address = client_ip(request)
        if not key.allows_ip(address):
            raise exceptions.PermissionDenied(f"API key not allowed from address {address}")
        now = timezone.now()
        if (
            key.last_used_at is None
            or (now - key.last_used_at).total_seconds() >= LAST_USED_RESOLUTION_SECONDS
        ):
            IntegrationKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return user, key

    def authenticate_header(self, request):
        return KEYWORD
