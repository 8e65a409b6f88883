"""The person's notices: the list (newest first) and "mark all as read"."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from editplatform.notifications.models import Notification
from editplatform.notifications.services import mark_all_read


@login_required
def notification_list(request):
    notices = Notification.objects.filter(recipient=request.user).select_related("job")[:100]
    return render(request, "notifications/list.html", {"notices": notices})


@login_required
@require_POST
def mark_read(request):
    mark_all_read(request.user)
    return redirect("notifications:list")
