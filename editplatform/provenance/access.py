"""Who may ask "was this made here?": holders of `provenance.check_provenance`.

The reviewer role holds it (accounts/roles.py). Like the audit trail, the answer shows
requesters and purposes, so a session also needs its second factor where one is offered.
"""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from audit.access import second_factor_ok

CHECK_PERMISSION = "provenance.check_provenance"


def can_check(user) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.has_perm(CHECK_PERMISSION)
        and second_factor_ok(user)
    )


def checker_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_check(request.user):
            raise PermissionDenied(
                f"checking provenance needs the {CHECK_PERMISSION} permission "
                "and a session verified with a second factor"
            )
        return view(request, *args, **kwargs)

    return wrapper
