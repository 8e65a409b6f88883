"""Chromium, a live server and a real Celery worker: an admin uploads a zip of catalogue
photos, picks a registered model and a GPU-hour price, watches the run finish and opens
the HTML report; a requester who knows the run's address is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.models import AuditEvent
from editplatform.models_registry import services
from editplatform.models_registry.models import PocRun
from tests.audit.helpers import PASSWORD, current_code, make_user
from tests.conftest import login
from tests.models_registry import poc_helpers as z

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_admin_runs_a_proof_of_concept_and_reads_the_report(
    live_server, page, model_bundle, celery_worker
):
    admin = make_user("admin-poc", "admin")
    version = services.register_bundle(source=Path(model_bundle), user=admin, name="demo model")
    make_user("staff-poc", "requester")

    login(page, live_server, "admin-poc", PASSWORD)
    page.fill("input[name=token]", current_code(admin))
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("#nav-models")
    page.click("#poc-link")
    page.wait_for_load_state("networkidle")
    page.select_option("#id_version", version.version)
    page.fill("#id_gpu_hour_price", "3.20")
    page.set_input_files(
        "#id_photos",
        files=[{"name": "shoot.zip", "mimeType": "application/zip", "buffer": z.photo_zip(4)}],
    )
    page.click("#poc-start")
    page.wait_for_load_state("networkidle")
    run = PocRun.objects.get()
    assert page.url.endswith(f"/models/poc/{run.pk}/")
    # the page polls the run's status and reloads itself once the worker has finished
    page.locator("#poc-summary").wait_for(timeout=180_000)
    assert page.locator("#poc-state").inner_text() == "succeeded"
    assert page.locator("#poc-used").inner_text() == "4"
    assert page.locator("#poc-psnr").inner_text().endswith("dB")
    run.refresh_from_db()
    assert run.state == "succeeded" and run.summary["cost_per_1000_images"] > 0

    with page.context.expect_page() as opened:
        page.click("#poc-open-report")
    report = opened.value
    report.wait_for_load_state()
    assert report.locator("h1").inner_text() == "Proof of concept on your photos"
    assert version.version in report.content()
    grid = report.locator("img[alt=grid]")
    assert grid.evaluate("img => img.complete && img.naturalWidth > 0")
    report.close()
    with page.expect_download() as download:
        page.click("#poc-download-json")
    figures = json.loads(Path(download.value.path()).read_text())
    assert figures["photos"]["n_used"] == 4 and figures["cost"]["price_per_hour"] == 3.2

    actions = list(
        AuditEvent.objects.filter(subject=version.subject, action__startswith="model.poc")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "model.poc_started",
        "model.poc_finished",
        "model.poc_report_read",
        "model.poc_report_read",
    ]
    page.click("header form button[type=submit]")  # sign out

    login(page, live_server, "staff-poc", PASSWORD)
    response = page.goto(f"{live_server.url}/models/poc/{run.pk}/report")
    assert response.status == 403
    assert page.locator("#poc-link").count() == 0
