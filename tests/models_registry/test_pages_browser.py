"""Chromium: a staff member finds the model list and a model card; a compliance reviewer
reads the model history."""

from __future__ import annotations

from pathlib import Path

import pytest

from editplatform.models_registry import services
from tests.audit.helpers import PASSWORD, current_code, make_user
from tests.conftest import login
from tests.models_registry.conftest import grant_model_approver

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_staff_read_the_card_and_reviewers_the_history(
    live_server, page, model_bundle, child_bundle
):
    admin = make_user("admin-b", "admin")
    approver = make_user("mapprover-b", "requester")
    grant_model_approver(approver)
    demo = services.register_bundle(source=Path(model_bundle), user=admin, name="demo model")
    child = services.register_bundle(source=child_bundle, user=admin, name="child model")
    services.approve(demo, approver, bundle_sha256=demo.version, comment="figures checked")
    services.activate(demo, admin, bundle_sha256=demo.version)
    make_user("staff-b", "requester")
    reviewer = make_user("rev-b", "reviewer")

    login(page, live_server, "staff-b", PASSWORD)
    page.click("#nav-models")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#model-list tbody tr")
    assert rows.count() == 2
    assert page.locator(f"tr[data-version='{demo.version}'] .badge").inner_text() == "Active"
    assert page.locator("#model-history-link").count() == 0  # history is for reviewers
    page.click("text=child model")
    page.wait_for_load_state("networkidle")
    assert page.locator("#model-version").inner_text() == child.version
    assert page.locator("#model-state").inner_text() == "Registered"
    assert "demo model" in page.locator("#parent-version").inner_text()
    edits = page.locator("#card-edits tbody tr")
    assert edits.count() == len(child.card["edits"])
    assert "needs approval" in page.locator("#card-edits").inner_text()
    assert "not declared" in page.locator("#card-files").inner_text()
    assert page.locator("#approve-form").count() == 0  # staff read; approvers decide
    page.click("header form button[type=submit]")  # sign out

    login(page, live_server, "rev-b", PASSWORD)
    page.fill("input[name=token]", current_code(reviewer))
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("#nav-models")
    page.click("#model-history-link")
    page.wait_for_load_state("networkidle")
    actions = page.locator("#model-history tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    # Newest first; the log is append-only, so earlier tests' model events follow these.
    assert actions[:4] == [
        "model.activated",
        "model.approved",
        "model.registered",
        "model.registered",
    ]
    assert "activated demo model" in page.locator("#model-history").inner_text()
