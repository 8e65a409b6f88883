"""The portal in Chromium: sign in, upload with preview, sliders, purpose, consent, live
progress, the three images side by side; bad input as a form error. A screenshot of each
run is kept under test-output/."""

from __future__ import annotations

import pytest

from editplatform.jobs.models import EditJob
from tests import catalog
from tests.conftest import OUTPUT, login
from tests.jobs import images
from tests.jobs.conftest import PASSWORD
from tests.jobs.helpers import assert_job_produced_everything


def _portal_job(page, live_server, user, bundle, tmp_path, screenshot: str) -> None:
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(images.jpeg((160, 120)))
    login(page, live_server, user.username, PASSWORD)
    page.goto(f"{live_server.url}/jobs/new/")
    sliders = page.locator("input.edit-slider")
    assert sliders.count() == len([spec for spec in bundle.catalog if spec.offered_to_staff])
    spec = catalog.plain()
    value = catalog.strength(spec)
    slider = page.locator(f"#id_edit_{spec.name}")
    assert float(slider.get_attribute("min")) == spec.min_strength
    assert float(slider.get_attribute("max")) == spec.max_strength
    # Every slider starts at "no change", whatever the catalog recommends.
    assert all(float(value) == 0 for value in sliders.evaluate_all("els => els.map(e => e.value)"))
    page.set_input_files("#id_image", str(photo))
    # Function predicates (not bare expressions): the CSP forbids eval in the page.
    page.wait_for_function("() => document.getElementById('image-preview').naturalWidth > 0")
    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))
    assert float(page.locator(f"#slider_id_edit_{spec.name}").input_value()) == value  # kept in sync
    page.fill("#id_purpose", f"Portal test: {spec.name} for the staff page")
    page.check("#id_consent")
    page.click("#submit-job")
    page.wait_for_url("**/jobs/*/")
    assert page.locator("#job-progress").is_visible()
    page.wait_for_selector("#img-edited", timeout=90_000)  # the JS reloads the page when done
    page.wait_for_function("() => ['original', 'reconstruction', 'edited'].every(k => {"
                           " const img = document.getElementById('img-' + k); return img && img.complete"
                           " && img.naturalWidth > 0; })")
    for kind in ("original", "reconstruction", "edited"):
        assert page.locator(f"#download-{kind}").is_visible()
    assert page.locator("#job-state").inner_text().lower() == "succeeded"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / screenshot), full_page=True)
    job = EditJob.objects.get()
    assert job.source == "portal" and job.edits == {spec.name: value}
    assert_job_produced_everything(job, bundle)
    # The images seen on the page were audited reads.
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="artifact.viewed", actor_name=user.username).count() >= 3
    page.goto(f"{live_server.url}/jobs/")
    assert page.locator("#job-table tbody tr").count() == 1


@pytest.mark.browser
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_portal_job_over_redis(live_server, page, worker, requester, bundle, tmp_path):
    _portal_job(page, live_server, requester, bundle, tmp_path, "jobs-portal-redis.png")


@pytest.mark.browser
@pytest.mark.embedded
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_portal_job_over_the_embedded_broker(live_server, page, worker, requester, bundle, tmp_path):
    _portal_job(page, live_server, requester, bundle, tmp_path, "jobs-portal-embedded.png")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_portal_shows_a_bad_upload_as_a_form_error(live_server, page, requester, model_bundle, tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(images.HTML)
    login(page, live_server, requester.username, PASSWORD)
    page.goto(f"{live_server.url}/jobs/new/")
    page.set_input_files("#id_image", str(fake))
    page.fill("#id_purpose", "Portal test: this upload must be refused")
    page.check("#id_consent")
    page.click("#submit-job")
    page.wait_for_selector("#image-errors")
    assert "HTML document" in page.locator("#image-errors").inner_text()
    assert EditJob.objects.count() == 0
