"""Compute, then release, in Chromium: four people, four browser contexts.

A requester submits a sensitive edit; a real worker computes it and holds the result;
an approver (TOTP sign-in) sees the held result next to the original and approves it;
the requester sees the decision (who, when, comment) and downloads the released
result; a compliance reviewer (TOTP sign-in) finds every view and download of that
job, by anyone, on the job's timeline, each with a readable summary. Screenshots of
each step are kept in test-output/.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.queries import filter_events
from editplatform.accounts.roles import ensure_groups
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from tests import catalog
from tests.accounts.conftest import current_code
from tests.conftest import OUTPUT, login
from tests.jobs import images
from tests.jobs.conftest import wait_for_state

PASSWORD = "four eyes see more 2026"
ACCESS = ("artifact.viewed", "artifact.downloaded")


def person(username: str, role: str, *, totp: bool = False):
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    user.groups.add(ensure_groups()[role])
    if totp:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def sign_in_with_totp(page, live_server, user) -> None:
    login(page, live_server, user.username, PASSWORD)
    assert "/account/2fa/" in page.url  # the second factor is demanded before anything else
    page.fill("#id_token", current_code(user))
    page.click("main button[type=submit]")  # (the header's Sign out is a submit button too)
    page.wait_for_load_state("networkidle")
    assert "/account/2fa/" not in page.url


def images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "(sel) => { const img = document.querySelector(sel);"
        " return img && img.complete && img.naturalWidth > 0; }",
        arg=selector,
    )


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_held_result_is_approved_released_downloaded_and_every_view_is_on_the_timeline(
    live_server, browser, celery_worker, model_bundle, tmp_path
):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    requester = person("rhea", "requester")
    approver = person("arjun", "approver", totp=True)
    reviewer = person("rosa", "reviewer", totp=True)
    photo = tmp_path / "person.jpg"
    photo.write_bytes(images.jpeg((128, 128)))
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        for _ in range(3)
    ]
    try:
        # 1. The requester asks for an edit the catalog marks sensitive; it is computed and held.
        spec = catalog.sensitive()
        value = catalog.strength(spec)
        page = contexts[0].new_page()
        login(page, live_server, requester.username, PASSWORD)
        page.goto(f"{live_server.url}/jobs/new/")
        page.set_input_files("#id_image", str(photo))
        page.locator(f"#id_edit_{spec.name}").evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
            str(value),
        )
        page.fill("#id_purpose", "Aged portrait for a retirement card, consent form #4411")
        page.check("#id_consent")
        page.click("#submit-job")
        page.wait_for_url("**/jobs/*/")
        job = EditJob.objects.get()
        assert job.needs_approval and job.edits == {spec.name: value}
        job = wait_for_state(job.pk, State.AWAITING_APPROVAL, timeout=120)
        page.wait_for_selector(
            "#held-notice", timeout=30_000
        )  # the page reloads once the result is held
        assert "approver is reviewing" in page.locator("#held-notice").inner_text()
        assert (
            page.locator("#img-edited").count() == 0
        )  # the held result is not shown to the requester
        page.screenshot(path=str(OUTPUT / "release-1-requester-held.png"), full_page=True)

        # 2. The approver finds it in the queue and sees the held result itself, then approves.
        approver_page = contexts[1].new_page()
        sign_in_with_totp(approver_page, live_server, approver)
        approver_page.goto(f"{live_server.url}/approvals/")
        row = approver_page.locator(f'tr[data-job="{job.pk}"]')
        assert "rhea" in row.inner_text() and spec.name in row.inner_text()
        row.locator("a.button").click()
        assert approver_page.locator(".purpose").inner_text().startswith("Aged portrait")
        images_loaded(approver_page, 'img[alt="Original photo"]')
        images_loaded(approver_page, "#held-result")
        assert approver_page.locator("#outputs-hash").inner_text().strip()
        approver_page.screenshot(path=str(OUTPUT / "release-2-approver-review.png"), full_page=True)
        approver_page.fill("#comment", "result checked against consent form")
        approver_page.click("#approve")
        approver_page.wait_for_url("**/approvals/")
        assert wait_for_state(job.pk, State.SUCCEEDED, timeout=10)

        # 3. The requester's open page follows the job to its release: the result, the decision,
        # a download.
        page.wait_for_selector("#img-edited", timeout=60_000)
        images_loaded(page, "#img-edited")
        decision = page.locator("#decisions tr.decision")
        assert decision.count() == 1
        assert (
            "arjun" in decision.inner_text()
            and "result checked against consent form" in decision.inner_text()
        )
        with page.expect_download() as download_info:
            page.click("#download-edited")
        saved = tmp_path / "released.png"
        download_info.value.save_as(saved)
        assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.screenshot(path=str(OUTPUT / "release-3-requester-released.png"), full_page=True)

        # 4. The reviewer's timeline lists every view and download of this job, by anyone, with a
        # summary.
        reviewer_page = contexts[2].new_page()
        sign_in_with_totp(reviewer_page, live_server, reviewer)
        reviewer_page.goto(f"{live_server.url}/audit/jobs/{job.pk}/")  # a bare UUID finds the job
        expected = list(
            filter_events(subject=f"job:{job.pk}").filter(action__in=ACCESS).order_by("seq")
        )
        readers = {(event.actor_name, event.action) for event in expected}
        assert {
            ("rhea", "artifact.viewed"),
            ("rhea", "artifact.downloaded"),
            ("arjun", "artifact.viewed"),
        } <= readers
        rows = reviewer_page.locator("#access-log tbody tr")
        assert rows.count() == len(expected)
        for i, event in enumerate(expected):
            cells = rows.nth(i).locator("td")
            assert cells.nth(0).inner_text() == str(event.seq)
            assert cells.nth(2).inner_text() == event.actor_name
            summary = cells.nth(3).inner_text()
            assert summary == event.summary and summary.startswith(event.actor_name), summary
        timeline = reviewer_page.locator("#timeline tbody tr")
        actions = [timeline.nth(i).get_attribute("data-action") for i in range(timeline.count())]
        for earlier, later in [
            ("job.submitted", "job.started"),
            ("job.started", "job.held"),
            ("job.held", "job.approved"),
            ("job.approved", "job.released"),
        ]:
            assert actions.index(earlier) < actions.index(later), actions
        summaries = [
            timeline.nth(i).locator("td.summary").inner_text() for i in range(timeline.count())
        ]
        assert all(summaries), summaries
        reviewer_page.wait_for_function(
            "() => [...document.querySelectorAll('#lineage img')].length >= 3"
            " && [...document.querySelectorAll('#lineage img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        reviewer_page.screenshot(
            path=str(OUTPUT / "release-4-reviewer-timeline.png"), full_page=True
        )
        # The thumbnails were logged once, with the page view, not one event each.
        viewed = filter_events(subject=f"job:{job.pk}").filter(action="compliance.timeline_viewed")
        assert viewed.count() == 1 and len(viewed.get().payload["thumbnails"]) == 3
        assert (
            filter_events(subject=f"job:{job.pk}")
            .filter(action__in=ACCESS, actor_name="rosa")
            .count()
            == 0
        )
    finally:
        for context in contexts:
            context.close()
