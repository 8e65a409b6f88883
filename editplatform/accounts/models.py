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
        raise ValidationError(
            f"unknown scope(s): {', '.join(unknown)}; allowed: {', '.join(SCOPES)}"
        )


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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text="The integration account this key acts as.",
    )
    scopes = models.JSONField(default=list, validators=[validate_scopes])
    allowed_networks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_networks],
        help_text="Optional IP allow-list (addresses or CIDR networks); empty means any address.",
    )
    jobs_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="Quota; empty means unlimited."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
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


class AccountRecovery(models.Model):
    """Four-eyes on account recovery.

    Opened when someone other than the account's owner resets the password or the
    second factor of an account that holds a privileged role (approver, reviewer,
    admin). While open, those roles are suspended (`accounts.recovery.is_suspended`):
    the person who reset the credentials could otherwise sign in as the owner. It
    completes when a second administrator (neither the requester nor the owner) has
    confirmed it and, for a 2FA reset, the owner has enrolled a new device.
    """

    class Kind(models.TextChoices):
        TWO_FACTOR = "2fa", "second factor reset"
        PASSWORD = "password", "password reset"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recoveries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: an operator command or shell (no signed-in person).",
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    re_enrolled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "account recovery"
        verbose_name_plural = "account recoveries"
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        state = "completed" if self.completed_at else "open"
        return f"{self.get_kind_display()} of {self.user} ({state})"

    @property
    def needs_enrolment(self) -> bool:
        return self.kind == self.Kind.TWO_FACTOR and self.re_enrolled_at is None


class EnrolmentCode(models.Model):
    """A one-time code an administrator issues so a privileged user can enrol 2FA.

    Only its SHA-256 is stored; the code is shown once to the issuing admin, who hands
    it to the user out of band. Single use, short-lived.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_codes"
    )
    code_sha256 = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "2FA enrolment code"

    def __str__(self) -> str:
        return f"enrolment code for {self.user} ({'used' if self.used_at else 'unused'})"


class SignInFailureWindow(models.Model):
    """Failed sign-ins counted per client address and time window.

    The first failure of a window writes one `user.login_failed` event; the rest only
    count here, so anonymous guessing cannot grow the permanent log without bound.
    """

    address = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    kind = models.CharField(max_length=16, default="login")
    count = models.PositiveIntegerField(default=0)
    usernames = models.JSONField(default=list, help_text="The first few names tried (truncated).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["address", "window_start", "kind"], name="signin_window_once"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.count} {self.kind} failure(s) from {self.address} from "
            f"{self.window_start:%Y-%m-%d %H:%M}"
        )
