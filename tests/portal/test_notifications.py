"""Item 5: requesters hear of decisions and results (in the portal and by email);
approvers see how many jobs wait for them in the navigation."""

from __future__ import annotations

import time

import pytest
from django.core import mail

from audit.models import AuditEvent
from editplatform.approvals import services as approvals
from editplatform.jobs import policy
from editplatform.jobs import services as job_services
from editplatform.jobs.tasks import run_edit_job
from editplatform.jobs.uploads import validate_image
from editplatform.notifications.listeners import on_event_appended
from editplatform.notifications.models import Notification
from tests import catalog
from tests.jobs import images
from tests.portal.conftest import client_for, person, sign_in


def _png(shade: int) -> bytes:
    """A catalogue photo in the demo model's domain (tests.jobs.images), one per shade."""
    return images.png((40, 40), seed=shade)


def _sensitive_job(user, shade: int = 10):
    """Computed by the real task (in this process); its outputs are held for approval."""
    job, _ = job_services.submit(
        user=user,
        image=validate_image(_png(shade)),
        edits=catalog.request(catalog.sensitive()),
        purpose="notification test job",
        consent=True,
        source="portal",
    )
    run_edit_job.apply(args=[str(job.pk)])
    # in a transactional test the task was also published: a session worker may be the
    # one computing it, so wait for the held state
    deadline = time.monotonic() + 120
    job.refresh_from_db()
    while job.state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job.refresh_from_db()
    assert job.state == "awaiting_approval", job.error
    return job


@pytest.mark.django_db(transaction=True)
def test_rejection_reaches_the_requester_in_the_portal_and_by_email(model_bundle):
    requester = person("nora", "requester", email="nora@example.org")
    approver = person("abel", "approver")
    job = _sensitive_job(requester)
    assert Notification.objects.count() == 0 and mail.outbox == []  # held: nothing to tell yet
    approvals.reject(job, approver, reason="no consent form on file")
    notice = Notification.objects.get()
    assert (notice.recipient, notice.job_id, notice.kind) == (requester, job.pk, "rejected")
    assert "rejected by abel" in notice.message and "no consent form on file" in notice.message
    assert notice.emailed and notice.read_at is None
    (message,) = mail.outbox
    assert message.to == ["nora@example.org"] and "rejected" in message.subject
    assert f"/jobs/{job.pk}/" in message.body and "no consent form on file" in message.body


@pytest.mark.django_db(transaction=True)
def test_approval_and_result_are_notified_once_each(model_bundle):
    requester = person("otto", "requester")  # no email address: the portal only
    approver = person("anke", "approver")
    job = _sensitive_job(requester, shade=30)
    approvals.approve(
        job,
        approver,
        params_sha256=job.params_sha256,
        outputs_sha256=policy.outputs_sha256(job),
        comment="consent form #12 checked",
    )
    job.refresh_from_db()
    assert job.state == "succeeded", job.error  # the approval released the held result
    kinds = list(
        Notification.objects.filter(recipient=requester)
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["approved", "succeeded"]
    approved = Notification.objects.get(kind="approved")
    assert "approved by anke" in approved.message and "consent form #12 checked" in approved.message
    assert mail.outbox == [] and not approved.emailed
    # The signal is delivered once per commit; a redelivery still tells nobody twice.
    event = AuditEvent.objects.get(action="job.released", subject=f"job:{job.pk}")
    on_event_appended(sender=AuditEvent, event=event)
    assert Notification.objects.filter(kind="succeeded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_integration_accounts_are_not_notified_and_rolled_back_events_notify_nobody(model_bundle):
    from django.db import transaction

    service = person("svc-shop", "integration")
    job, _ = job_services.submit(
        user=service,
        image=validate_image(_png(50)),
        edits=catalog.request(),
        purpose="integration job",
        consent=True,
        source="api",
    )
    run_edit_job.apply(args=[str(job.pk)])
    assert Notification.objects.count() == 0
    requester = person("ruth", "requester")
    plain, _ = job_services.submit(
        user=requester,
        image=validate_image(_png(55)),
        edits=catalog.request(),
        purpose="a plain job runs and is done",
        consent=True,
        source="portal",
    )
    run_edit_job.apply(args=[str(plain.pk)])
    assert list(Notification.objects.values_list("recipient__username", "kind")) == [
        ("ruth", "succeeded")
    ]
    Notification.objects.all().delete()
    approver = person("anna", "approver")
    pending = _sensitive_job(requester, shade=70)
    with pytest.raises(RuntimeError), transaction.atomic():
        approvals.reject(pending, approver, reason="rolled back with the transaction")
        raise RuntimeError("the surrounding transaction fails")
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_navigation_shows_unread_notices_and_the_pending_queue(model_bundle):
    requester = person("petra", "requester")
    approver = person("aldo", "approver")
    job = _sensitive_job(requester, shade=90)
    approver_page = client_for(approver).get("/").content.decode()
    assert 'id="pending-approvals-count"' in approver_page
    assert 'title="1 awaiting your decision">1</span>' in approver_page
    assert 'id="pending-approvals-count"' not in client_for(requester).get("/").content.decode()
    approvals.reject(job, approver, reason="wrong product")
    assert 'id="pending-approvals-count"' not in client_for(approver).get("/").content.decode()
    client = client_for(requester)
    home = client.get("/").content.decode()
    assert 'id="unread-count"' in home and 'title="1 unread">1</span>' in home
    listing = client.get("/notifications/").content.decode()
    assert "wrong product" in listing and 'class="unread"' in listing
    assert client.post("/notifications/read/").status_code == 302
    assert 'id="unread-count"' not in client.get("/").content.decode()
    assert Notification.objects.get().read_at is not None
    # Another person's notices are not theirs to see or clear.
    assert "wrong product" not in client_for(approver).get("/notifications/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_requester_reads_a_decision_in_chromium(live_server, page, model_bundle):
    requester = person("paula", "requester")
    approver = person("adam", "approver")
    job = _sensitive_job(requester, shade=110)
    approvals.reject(job, approver, reason="the photo shows a minor")
    sign_in(page, live_server, requester)
    assert page.locator("#unread-count").inner_text() == "1"
    page.click("#nav-notifications")
    item = page.locator("#notification-list li.unread")
    assert "the photo shows a minor" in item.inner_text()
    page.click("#mark-read")
    page.wait_for_load_state("networkidle")
    assert page.locator("#unread-count").count() == 0
    page.locator("#notification-list li a").first.click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
