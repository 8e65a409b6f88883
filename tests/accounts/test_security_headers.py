"""Security headers and a Content-Security-Policy without inline scripts on every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/healthz", "/api/v1/docs"])
def test_pages_carry_csp_and_security_headers(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/static/portal/portal.css",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/oauth2-redirect.html",
    ],
)
def test_static_files_carry_the_same_security_headers(client, path):
    """Whitenoise answers before django-csp and the frame middleware run (issue 11)."""
    response = client.get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_template_contains_an_inline_script_or_handler():
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for match in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{template.relative_to(ROOT)}: {match.group(0)}")
        if re.search(r"\son(click|load|submit|change|input)=", text):
            offenders.append(f"{template.relative_to(ROOT)}: inline event handler")
    assert offenders == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_offline_under_the_csp(live_server, page):
    from django.contrib.auth import get_user_model

    from editplatform.accounts.roles import ensure_groups
    from tests.accounts.conftest import PASSWORD
    from tests.conftest import login

    user = get_user_model().objects.create_user("swagger-reader", password=PASSWORD)
    user.groups.add(ensure_groups()["requester"])
    violations: list[str] = []
    external: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.on(
        "request",
        lambda req: (
            external.append(req.url)
            if not req.url.startswith(live_server.url)
            and not req.url.startswith(("data:", "blob:"))
            else None
        ),
    )
    login(page, live_server, user.username, PASSWORD)
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "StyleLedger API" in page.locator(".swagger-ui .info .title").inner_text()
    assert violations == [] and external == []
    assert Path(ROOT, "test-output").exists()
