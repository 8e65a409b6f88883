"""The four-eyes flow in Chromium, three people, three browser contexts:
a requester submits a sensitive edit, an approver (TOTP sign-in) approves it, a real
worker runs it, and a compliance reviewer (TOTP sign-in) sees the chain of events."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.roles import ensure_groups
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from tests import catalog
from tests.accounts.conftest import current_code
from tests.conftest import OUTPUT, login
from tests.jobs import images
from tests.jobs.conftest import wait_for_state

PASSWORD = "four eyes see more 2026"


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


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sensitive_edit_is_approved_by_a_second_person_then_runs_and_is_traceable(
        live_server, browser, celery_worker, model_bundle, tmp_path):
    requester = person("rhea", "requester")
    approver = person("arjun", "approver", totp=True)
    reviewer = person("rosa", "reviewer", totp=True)
    photo = tmp_path / "person.jpg"
    photo.write_bytes(images.jpeg((128, 128)))
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(3)]
    try:
        # 1. The requester asks for an edit the catalog marks sensitive.
        spec = catalog.sensitive()
        value = catalog.strength(spec)
        page = contexts[0].new_page()
        login(page, live_server, requester.username, PASSWORD)
        page.goto(f"{live_server.url}/jobs/new/")
        page.set_input_files("#id_image", str(photo))
        page.locator(f"#id_edit_{spec.name}").evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))
        page.fill("#id_purpose", "Aged portrait for a retirement card, consent form #4411")
        page.check("#id_consent")
        page.click("#submit-job")
        page.wait_for_url("**/jobs/*/")
        job = EditJob.objects.get()
        assert job.state == State.AWAITING_APPROVAL and job.edits == {spec.name: value}
        assert "awaiting" in page.locator("#job-state").inner_text().lower()

        # 2. The approver signs in with TOTP, finds it in the queue, sees the request, approves.
        approver_page = contexts[1].new_page()
        sign_in_with_totp(approver_page, live_server, approver)
        approver_page.goto(f"{live_server.url}/approvals/")
        row = approver_page.locator(f'tr[data-job="{job.pk}"]')
        assert "rhea" in row.inner_text() and spec.name in row.inner_text()
        row.locator("a.button").click()
        assert approver_page.locator(".purpose").inner_text().startswith("Aged portrait")
        approver_page.wait_for_function(
            "() => { const img = document.querySelector('img[alt=\"Original photo\"]'); return img && img.naturalWidth > 0; }")
        approver_page.fill("#comment", "consent form checked")
        approver_page.click("#approve")
        approver_page.wait_for_url("**/approvals/")
        approver_page.screenshot(path=str(OUTPUT / "four-eyes-approver.png"), full_page=True)

        # 3. The worker runs it; the requester's open page follows it (it polls the API and
        #    reloads itself when the job ends) to the result.
        wait_for_state(job.pk, State.SUCCEEDED, timeout=120)
        page.wait_for_selector("#img-edited", timeout=60_000)
        page.screenshot(path=str(OUTPUT / "four-eyes-requester.png"), full_page=True)

        # 4. The reviewer sees the whole chain, in order, with who did what.
        reviewer_page = contexts[2].new_page()
        sign_in_with_totp(reviewer_page, live_server, reviewer)
        reviewer_page.goto(f"{live_server.url}/audit/jobs/job:{job.pk}/")
        rows = reviewer_page.locator("#timeline tbody tr")
        seen = [(rows.nth(i).locator("td").nth(2).inner_text(), rows.nth(i).locator(".badge").inner_text())
                for i in range(rows.count())]
        actions = [action for _actor, action in seen]
        for earlier, later in [("job.submitted", "job.approved"), ("job.approved", "job.queued"),
                               ("job.queued", "job.started"), ("job.started", "job.succeeded")]:
            assert actions.index(earlier) < actions.index(later), actions
        assert ("rhea", "job.submitted") in seen and ("arjun", "job.approved") in seen
        reviewer_page.wait_for_function(
            "() => [...document.querySelectorAll('#lineage img')].length >= 3"
            " && [...document.querySelectorAll('#lineage img')].every(img => img.complete && img.naturalWidth > 0)")
        reviewer_page.screenshot(path=str(OUTPUT / "four-eyes-reviewer.png"), full_page=True)
    finally:
        for context in contexts:
            context.close()
