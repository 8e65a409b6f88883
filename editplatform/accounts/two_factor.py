"""TOTP two-factor authentication (django-otp) for the roles that can change outcomes.

Approvers, compliance reviewers and administrators must prove a second factor in
each session before any page or API call other than the 2FA pages themselves. Their
first sign-in enrols a TOTP device (secret shown once with an otpauth:// URI and a QR
code) — for these roles only with a one-time enrolment code an administrator issued;
later sign-ins ask for the current code.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from editplatform.accounts.roles import ADMIN, APPROVER, REVIEWER, held_roles

ROLES_REQUIRING_2FA = frozenset({APPROVER.name, REVIEWER.name, ADMIN.name})
_EXEMPT_PREFIXES = ("/account/2fa/", "/login/", "/logout/", "/static/", "/healthz", "/readyz")


def requires_two_factor(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    # Held, not effective, roles: an account whose roles are suspended by a recovery
    # still proves a second factor (it must, to re-enrol).
    if user.is_superuser or held_roles(user) & ROLES_REQUIRING_2FA:
        return True
    # Anyone else who chose to enrol (a requester, from the account page) is held to it.
    return confirmed_totp_device(user) is not None


def confirmed_totp_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


class RequireTwoFactorMiddleware:
    """Stops unverified sessions of 2FA roles at the door (after OTPMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and requires_two_factor(user)
            and not user.is_verified()
            and not request.path.startswith(_EXEMPT_PREFIXES)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "two-factor verification required: verify at /account/2fa/"},
                    status=403,
                )
            return redirect(
                f"{reverse('accounts:two-factor')}?{urlencode({'next': request.get_full_path()})}"
            )
        return self.get_response(request)
