"""API keys for approved integrations.

Built on djangorestframework-api-key: it generates `prefix.secret` keys, stores only
the prefix (for lookup) and a SHA-512 hash of the whole key, and handles expiry and
irreversible revocation. We add what a governed integration needs: the service account
the key acts as, scopes, an optional IP allow-list, a per-key hourly job quota and the
last time the key was used.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

SCOPE_JOBS_WRITE = "jobs:write"
SCOPE_JOBS_READ = "jobs:read"
SCOPE_AUDIT_READ = "audit:read"
SCOPE_PROVENANCE_CHECK = "provenance:check"
SCOPES = (SCOPE_JOBS_WRITE, SCOPE_JOBS_READ, SCOPE_AUDIT_READ, SCOPE_PROVENANCE_CHECK)


def validate_scopes(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("scopes must be a non-empty list")
    unknown = sorted(set(value) - set(SCOPES))
    if unknown:
        raise ValidationError(f"unknown scope(s): {', '.join(unknown)}; allowed: {', '.join(SCOPES)}")


def validate_networks(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("allowed_networks must be a list of IP networks")
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except (ValueError, TypeError):
            raise ValidationError(f"not an IP address or network: {item!r}") from None


class IntegrationKey(AbstractAPIKey):
    service_account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys",
        help_text="The integration account this key acts as.",
    )
    scopes = models.JSONField(default=list, validators=[validate_scopes])
    allowed_networks = models.JSONField(
        default=list, blank=True, validators=[validate_networks],
        help_text="Optional IP allow-list (addresses or CIDR networks); empty means any address.",
    )
    jobs_per_hour = models.PositiveIntegerField(null=True, blank=True, help_text="Quota; empty means unlimited.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "integration API key"
        verbose_name_plural = "integration API keys"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def allows_ip(self, address: str | None) -> bool:
        if not self.allowed_networks:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allowed_networks)
