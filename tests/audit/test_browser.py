"""Chromium walks a compliance reviewer through filter -> job timeline -> verify."""

from __future__ import annotations

import pytest

from audit import log as audit_log
from audit.models import AuditEvent
from tests.audit import action_names as actions
from tests.audit.helpers import PASSWORD, current_code, make_job_with_outputs, make_user
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.mark.django_db(transaction=True)
def test_reviewer_filters_opens_a_job_timeline_and_verifies_the_log(
    fresh_log, live_server, page, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "s")},
        },
    }
    job = make_job_with_outputs(make_user("req-browser", "requester"))
    for i in range(30):
        audit_log.append_event(actions.JOB_QUEUED, subject=f"other-{i}", payload={"i": i})
    reviewer = make_user("rev-browser", "reviewer")

    login(page, live_server, "rev-browser", PASSWORD)
    assert "/account/2fa/" in page.url
    page.fill("input[name=token]", current_code(reviewer))
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")

    page.click("header nav >> text=Audit trail")
    subject = f"job:{job.pk}"
    page.fill("#id_subject", subject)
    page.click("#apply-filters")
    page.wait_for_load_state("networkidle")
    rows = page.locator("table.audit-events tbody tr")
    assert rows.count() == 3
    assert set(page.locator("table.audit-events tbody .badge").all_inner_texts()) == {
        "job.submitted",
        "job.started",
        "job.succeeded",
    }

    page.locator(
        f"table.audit-events a:text-is('{subject}')"
    ).first.click()  # -> the job's timeline
    page.wait_for_load_state("networkidle")
    assert page.locator("#lineage").is_visible()
    lineage = page.locator("#lineage").inner_text()
    for artifact in (job.original, job.latent, job.edited, job.reconstruction):
        assert artifact.sha256 in lineage
    images = page.locator("#lineage img")
    assert images.count() == 3
    for i in range(3):  # each thumbnail really loaded
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth") == 16
    # The thumbnails are logged once, with the page view that shows them, not one event each.
    assert AuditEvent.objects.filter(action=actions.ARTIFACT_VIEWED, subject=subject).count() == 0
    shown = AuditEvent.objects.get(action="compliance.timeline_viewed", subject=subject)
    assert len(shown.payload["thumbnails"]) == 3 and shown.actor_name

    page.click("text=Verify the log")
    page.click("#run-verify")
    page.wait_for_load_state("networkidle")
    result = page.locator("#verify-result")
    assert "verified" in result.inner_text() and "failed" not in result.inner_text()
    assert AuditEvent.objects.filter(
        action=actions.AUDIT_VERIFIED, actor_name="rev-browser"
    ).exists()
