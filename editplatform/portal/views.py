"""Portal pages that belong to no single feature: home, the account page and sign-in.

Home shows each role what it does next (a requester's new edit and recent jobs, an
approver's queue, a reviewer's trail, an admin's pending recoveries) rather than one
"My jobs" page that only fits requesters. Integration accounts never use the portal.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from editplatform.accounts.models import AccountRecovery
from editplatform.accounts.roles import ADMIN, APPROVER, REQUESTER, REVIEWER, has_role
from editplatform.accounts.two_factor import confirmed_totp_device, requires_two_factor
from editplatform.approvals.services import awaiting_for
from editplatform.jobs.models import EditJob

RECENT_JOBS = 5


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


def recoveries_to_confirm(user):
    """Open recoveries a second administrator must confirm (never the one who opened them)."""
    return (AccountRecovery.objects.filter(confirmed_by__isnull=True, completed_at__isnull=True)
            .exclude(requested_by=user).select_related("user").order_by("requested_at"))


@login_required
def home(request):
    user = request.user
    context: dict = {}
    if has_role(user, REQUESTER):
        context["recent_jobs"] = list(EditJob.objects.filter(requester=user).order_by("-created_at")[:RECENT_JOBS])
    if has_role(user, APPROVER):
        context["approval_queue"] = awaiting_for(user).count()
    if has_role(user, REVIEWER):
        context["reviewer"] = True
    if has_role(user, ADMIN):
        context["recoveries"] = list(recoveries_to_confirm(user)[:20])
        context["admin"] = True
    return render(request, "portal/home.html", context)


@login_required
def account(request):
    user = request.user
    return render(request, "accounts/account.html", {
        "device": confirmed_totp_device(user),
        "two_factor_required": requires_two_factor(user),
        "verified": user.is_verified() if hasattr(user, "is_verified") else False,
    })
