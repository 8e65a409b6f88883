"""Hostile strings in events never break the reviewer's pages nor leave them unescaped.

Anyone can put a string into the log: one anonymous failed sign-in writes the user
name tried into the subject. The event is permanent, so a page that cannot render it
is broken for ever. Subjects link through query strings (`audit.subjects`), never by
reversing a path converter with the subject.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.test import Client
from django.utils.html import escape

from audit.models import AuditEvent
from tests.audit import action_names as actions
from tests.audit.helpers import make_user, sign_in

pytestmark = pytest.mark.postgres

HOSTILE_NAMES = [
    "a/b",
    "job:a/b",
    "../../admin/",
    "<script>alert(1)</script>",
    "x?y=1#z&w",
    "%2F%00",
    "\u202egnp.exe",
]


@pytest.mark.django_db
def test_a_failed_sign_in_with_a_slash_does_not_break_the_reviewer_pages(fresh_log, client):
    anonymous = Client()
    for i, name in enumerate(HOSTILE_NAMES):  # one address each: below any lockout or aggregation
        response = anonymous.post(
            "/login/",
            {"username": name, "password": "wrong-password!"},
            REMOTE_ADDR=f"198.51.100.{i + 1}",
        )
        assert response.status_code == 200  # the sign-in form again, with its error
    failed = list(AuditEvent.objects.filter(action=actions.USER_LOGIN_FAILED).order_by("seq"))
    assert [e.payload["username"] for e in failed] == HOSTILE_NAMES
    sign_in(client, make_user("rev", "reviewer"))
    listing = client.get("/audit/")
    assert listing.status_code == 200
    html = listing.content.decode()
    # The subject of a failed sign-in is the client address (accounts.sign_in aggregates
    # per address); the name tried is in the payload, shown escaped on the event page.
    assert "<script>alert(1)</script>" not in html
    script_event = next(e for e in failed if e.payload["username"] == "<script>alert(1)</script>")
    assert (
        b"&lt;script&gt;alert(1)&lt;/script&gt;"
        in client.get(f"/audit/events/{script_event.seq}/").content
    )
    for event in failed:
        detail = client.get(f"/audit/events/{event.seq}/")
        assert detail.status_code == 200 and b"<script>alert" not in detail.content
        # Follow the subject's link exactly as rendered on the list page.
        match = re.search(r'href="([^"]*)">' + re.escape(escape(event.subject)) + "</a>", html)
        assert match, event.subject
        linked = client.get(html_lib.unescape(match.group(1)))
        assert linked.status_code == 200 and [e.seq for e in linked.context["events"]] == [
            event.seq
        ]
        api = client.get("/api/v1/audit/events", {"subject": event.subject})
        assert api.status_code == 200 and [e["subject"] for e in api.json()["results"]] == [
            event.subject
        ]
