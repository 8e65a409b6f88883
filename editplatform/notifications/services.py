"""Who is told what: the requester of a job hears of every decision and result.

Integration accounts are never told here (they poll the API and never use the portal).
Email goes through Django's email backend (the console in development, SMTP in
production: EMAIL_* settings) when the person has an address.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from editplatform.accounts.roles import INTEGRATION, has_role
from editplatform.jobs.models import EditJob
from editplatform.notifications.models import Notification

log = logging.getLogger(__name__)


def message_for(kind: str, job: EditJob, *, actor_name: str, payload: dict) -> str:
    short = str(job.pk)[:8]
    if kind == "approved":
        comment = (payload.get("comment") or "").strip()
        approvals, required = payload.get("approvals"), payload.get("required")
        tally = f" ({approvals} of {required} approvals)" if approvals and required else ""
        return f"Job {short} was approved by {actor_name}{tally}." + (
            f' Comment: "{comment}"' if comment else ""
        )
    if kind == "rejected":
        reason = (payload.get("reason") or "").strip()
        return f'Job {short} was rejected by {actor_name}. Reason: "{reason}"'
    if kind == "expired":
        return (
            f"Job {short} was not decided in time; its result was discarded."
            " You can submit it again."
        )
    if kind == "succeeded":
        return f"Job {short} has finished: the result is ready to view and download."
    return f"Job {short} failed: {job.error or 'see the job page for details'}"


def notify_requester(
    job_id, *, kind: str, event_seq: int, actor_name: str, payload: dict
) -> Notification | None:
    job = EditJob.objects.select_related("requester").filter(pk=job_id).first()
    if job is None or has_role(job.requester, INTEGRATION):
        return None
    text = message_for(kind, job, actor_name=actor_name, payload=payload)
    try:
        with transaction.atomic():
            notice = Notification.objects.create(
                recipient=job.requester, job=job, kind=kind, event_seq=event_seq, message=text
            )
    except IntegrityError:
        return None  # already told about this event
    if job.requester.email:
        link = getattr(settings, "PORTAL_BASE_URL", "").rstrip("/") + reverse(
            "jobs:detail", args=[job.pk]
        )
        try:
            send_mail(
                subject=f"StyleLedger: job {str(job.pk)[:8]} {notice.get_kind_display().lower()}",
                message=f"{text}\n\n{link}\n",
                from_email=None,
                recipient_list=[job.requester.email],
            )
        except Exception:  # a mail outage must not lose the in-app notice
            log.exception("could not email %s about job %s", job.requester.username, job.pk)
        else:
            Notification.objects.filter(pk=notice.pk).update(emailed=True)
    return notice


def unread_count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def mark_all_read(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
