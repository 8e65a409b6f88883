"""Chromium signs in through the portal with a demo account."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.conftest import login


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_demo_account_signs_in_in_chromium(live_server, page):
    from io import StringIO

    out = StringIO()
    call_command("bootstrap_demo_accounts", "--json", stdout=out)
    import json

    accounts = {row["role"]: row for row in json.loads(out.getvalue())}
    requester = accounts["requester"]
    login(page, live_server, requester["username"], "wrong-password")
    assert "/login/" in page.url
    assert page.locator(".errorlist").is_visible()
    login(page, live_server, requester["username"], requester["password"])
    assert page.locator("h1").inner_text() == f"Welcome, {requester['username']}"
    assert "requester" in page.locator(".who").inner_text()
