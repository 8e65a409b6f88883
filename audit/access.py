"""Who may read the audit trail: holders of the Django permission `audit.view_auditevent`.

The log names no roles. The project grants the permission to whichever roles it
chooses (the role table in `editplatform/accounts/roles.py` gives it to compliance
reviewers), and pages built on the log elsewhere (`editplatform.compliance`) use the
same decorator.

Reading the log also needs a session verified with a second factor when the
authentication stack offers one (django-otp's `user.is_verified()`), so whoever is
granted the permission, directly or through a role, cannot read with a password alone.
`AUDIT_REQUIRE_SECOND_FACTOR = False` turns that off.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

READ_PERMISSION = "audit.view_auditevent"
DENIED_MESSAGE = "the audit trail is for holders of the audit.view_auditevent permission"
UNVERIFIED_MESSAGE = "the audit trail needs a session verified with a second factor"


def second_factor_ok(user) -> bool:
    """True unless a second factor is required, offered, and not yet passed this session."""
    if not getattr(settings, "AUDIT_REQUIRE_SECOND_FACTOR", True):
        return True
    is_verified = getattr(user, "is_verified", None)
    return not callable(is_verified) or bool(is_verified())


def can_read(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(READ_PERMISSION))


def reader_required(view):
    """Portal views: anonymous -> sign-in page; no permission or no second factor -> 403."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_read(request.user):
            raise PermissionDenied(DENIED_MESSAGE)
        if not second_factor_ok(request.user):
            raise PermissionDenied(UNVERIFIED_MESSAGE)
        return view(request, *args, **kwargs)

    return wrapper
