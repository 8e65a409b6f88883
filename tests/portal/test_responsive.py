"""Every portal page, for each role, at 360 px (a small phone) and 1280 px wide: the page
must not scroll sideways (document.documentElement.scrollWidth > window.innerWidth).
Wide content (tables, hashes) scrolls inside its own box instead. Screenshots of every
page at both widths are kept under test-output/responsive/."""

from __future__ import annotations

import re
import time

import pytest

from audit.models import AuditEvent
from editplatform.approvals import services as approvals
from editplatform.jobs import services as job_services
from editplatform.jobs.tasks import run_edit_job
from editplatform.jobs.uploads import validate_image
from tests import catalog
from tests.conftest import OUTPUT
from tests.jobs import images
from tests.portal.conftest import person, sign_in

WIDTHS = (360, 1280)
SHOTS = OUTPUT / "responsive"
OVERFLOW = "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"


def _png(shade: int) -> bytes:
    """A catalogue photo in the demo model's domain (tests.jobs.images), one per shade."""
    return images.png((48, 48), seed=shade)


def _world():
    requester = person("riley", "requester")
    people = {
        "requester": requester,
        "approver": person("avery", "approver"),
        "reviewer": person("rowan", "reviewer"),
        "admin": person("addison", "admin"),
    }
    done, _ = job_services.submit(
        user=requester,
        image=validate_image(_png(20)),
        edits=catalog.request(),
        purpose="A finished job for the responsive pages test",
        consent=True,
        source="portal",
    )
    run_edit_job.apply(args=[str(done.pk)])
    done.refresh_from_db()
    assert done.state == "succeeded", done.error
    pending, _ = job_services.submit(
        user=requester,
        image=validate_image(_png(60)),
        edits=catalog.request(catalog.sensitive()),
        purpose="A sensitive job waiting for an approver",
        consent=True,
        source="portal",
    )
    rejected, _ = job_services.submit(
        user=requester,
        image=validate_image(_png(100)),
        edits=catalog.request(catalog.sensitive()),
        purpose="A sensitive job that was rejected",
        consent=True,
        source="portal",
    )
    for job in (pending, rejected):  # computed first, outputs held for the approver
        # run here, unless a session worker already took the published task: then wait
        run_edit_job.apply(args=[str(job.pk)])
        deadline = time.monotonic() + 120
        job.refresh_from_db()
        while job.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            job.refresh_from_db()
        assert job.state == "awaiting_approval", job.error
    approvals.reject(
        rejected, people["approver"], reason="A long reason that wraps: " + "no-consent-form " * 6
    )
    seq = (
        AuditEvent.objects.filter(subject=f"job:{done.pk}")
        .order_by("seq")
        .values_list("seq", flat=True)[0]
    )
    pages = {
        "requester": [
            "/",
            "/jobs/",
            "/jobs/new/",
            f"/jobs/{done.pk}/",
            f"/jobs/{pending.pk}/",
            f"/jobs/{rejected.pk}/",
            "/notifications/",
            "/account/",
            "/account/2fa/",
            "/no-such-page/",
            "/approvals/",
        ],
        "approver": [
            "/",
            "/jobs/",
            "/approvals/",
            f"/approvals/{pending.pk}/",
            f"/jobs/{pending.pk}/",
            "/notifications/",
            "/account/",
        ],
        "reviewer": [
            "/",
            "/jobs/?scope=all",
            f"/jobs/{done.pk}/",
            "/audit/",
            f"/audit/events/{seq}/",
            f"/audit/jobs/job:{done.pk}/",
            "/audit/verify/",
            "/provenance/check",
            "/notifications/",
            "/account/",
        ],
        "admin": ["/", "/jobs/", "/notifications/", "/account/"],
    }
    return people, pages


def _slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-")[:60] or "home"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_portal_page_scrolls_sideways(live_server, browser, model_bundle):
    people, pages = _world()
    SHOTS.mkdir(parents=True, exist_ok=True)
    overflowing, visited = [], 0
    # Signed out: the sign-in page.
    roles = [("anon", None, ["/login/"])] + [
        (role, people[role], urls) for role, urls in pages.items()
    ]
    for role, user, urls in roles:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            if user is not None:
                sign_in(page, live_server, user)
            for url in urls:
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(f"{live_server.url}{url}")
                    page.wait_for_load_state("networkidle")
                    assert "/login/" not in page.url or user is None, (role, url, page.url)
                    size = page.evaluate(OVERFLOW)
                    page.screenshot(
                        path=str(SHOTS / f"{role}-{_slug(url)}-{width}.png"), full_page=True
                    )
                    visited += 1
                    if size["scroll"] > size["inner"]:
                        overflowing.append(
                            f"{role} {url} at {width} px: {size['scroll']} > {size['inner']}"
                        )
        finally:
            context.close()
    assert visited == 2 * sum(len(urls) for _, _, urls in roles)
    assert overflowing == [], "pages wider than the window:\n" + "\n".join(overflowing)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_overflow_check_catches_a_page_that_is_too_wide(live_server, browser):
    """The check itself: a page with a fixed 600 px element does overflow at 360 px."""
    context = browser.new_context(viewport={"width": 360, "height": 700})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.evaluate(
            "() => { const d = document.createElement('div'); d.style.width = '600px';"
            " d.style.height = '10px'; document.querySelector('main').appendChild(d); }"
        )
        size = page.evaluate(OVERFLOW)
        assert size["scroll"] > size["inner"]
    finally:
        context.close()
