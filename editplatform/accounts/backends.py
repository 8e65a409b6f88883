"""Model permissions that follow the account's recovery state.

Django's ModelBackend grants a group's permissions to every member. An account under
an open recovery (someone else reset its password or 2FA) must not use the admin
role's permissions until a second admin confirmed it, so this backend grants nothing
to a suspended account. (Per-user permissions are not editable in the admin; one
granted in a shell is an `account.permissions_changed` event.)
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from editplatform.accounts.recovery import is_suspended


class GovernedModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if (
            user_obj.is_active
            and not user_obj.is_anonymous
            and obj is None
            and is_suspended(user_obj)
        ):
            return set()
        return super().get_all_permissions(user_obj, obj)
