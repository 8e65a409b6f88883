"""A DomainError escaping a portal view is a styled page with its status, never a 500."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.postgres]


@pytest.mark.django_db
def test_a_domain_error_in_a_portal_view_is_a_styled_page_with_its_status(client, settings):
    settings.ROOT_URLCONF = "tests.core.domain_error_urls"
    response = client.get("/test-only/refuse/")
    assert response.status_code == 503
    body = response.content.decode()
    assert "the audit log was rolled back" in body and "audit_log_rolled_back" in body
    assert 'href="/"' in body or "Back to the start page" in body  # a way back, inside the site's layout
    assert "StyleLedger" in body
