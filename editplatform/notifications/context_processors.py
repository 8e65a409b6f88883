"""Navigation counts: unread notices for everyone, the pending queue for approvers."""

from __future__ import annotations

from editplatform.accounts.roles import APPROVER, has_role


def navigation_counts(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from editplatform.approvals.services import awaiting_for
    from editplatform.notifications.services import unread_count

    counts = {"unread_notifications": unread_count(user)}
    if has_role(user, APPROVER):
        counts["pending_approvals"] = awaiting_for(user).count()
    return counts
