"""Property tests: any string in any field renders, escaped; any query answers 4xx, never 5xx.

Item 7: events carrying arbitrary user names, purposes, file names, edit names and
subjects (plus known-hostile fragments: markup, path separators, template syntax) are
appended through the real `audit.log.append_event`; the reviewer's list, detail and
timeline pages and the REST API must answer 200 with every value escaped, and the
subject's link must lead to a page that lists the event.

Item 8: arbitrary query strings (impossible dates, garbled cursors, huge and negative
numbers, unknown actions) against the reviewer's list and the API answer 200 or a 4xx
(400 with {detail, code, field} on the API), never a 5xx.

Example counts are bounded: the machine is shared.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.utils.html import escape
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit import log as audit_log
from audit import subjects
from tests.audit import action_names as actions
from tests.audit.helpers import make_user, sign_in

pytestmark = pytest.mark.postgres

BOUNDED = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "/",
    "../../",
    "%2F",
    "?a=b#c",
    "&amp;",
    "{{ form }}",
    "{% debug %}",
    "\\",
    " ",
    "\r\n",
    "\u202e",
    "job:",
    "\ufeff",
]
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x")

# Any Unicode text PostgreSQL text and jsonb can hold: no NUL, no lone surrogates.
chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def hostile_text(max_size: int):
    """Free text with a known-hostile fragment somewhere in it, at most `max_size` chars."""
    return st.builds(
        lambda a, b, c: (a + b + c)[:max_size],
        st.text(chars, max_size=20),
        st.sampled_from(HOSTILE),
        st.text(chars, max_size=20),
    ).filter(bool)


subject_st = st.builds(
    lambda prefix, rest: (prefix + rest)[:200],
    st.sampled_from(["", "job:", "login:", "user:"]),
    hostile_text(190),
)


@pytest.fixture
def reviewer_client(fresh_log, client, db):
    sign_in(client, make_user("rev", "reviewer"))
    return client


def assert_no_raw_markup(html: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in html


@pytest.mark.django_db
@BOUNDED
@given(
    username=hostile_text(150),
    subject=subject_st,
    purpose=hostile_text(300),
    filename=hostile_text(255),
    edit_name=hostile_text(64),
    request_id=hostile_text(64),
)
def test_any_string_in_any_field_renders_escaped(
    reviewer_client, username, subject, purpose, filename, edit_name, request_id
):
    client = reviewer_client
    event = audit_log.append_event(
        actions.JOB_SUBMITTED,
        actor_name=username,
        subject=subject,
        request_id=request_id,
        payload={
            "purpose": purpose,
            "filename": filename,
            "edits": {edit_name: 0.5},
            "original_sha256": filename,
            "outputs": {edit_name: [filename]},
        },
    )
    listing = client.get("/audit/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert_no_raw_markup(html)
    assert escape(subject) in html and escape(username) in html

    detail = client.get(f"/audit/events/{event.seq}/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert_no_raw_markup(html)
    for value in (subject, username, request_id):
        assert escape(value) in html
    assert escape(subjects.url_for(subject)) in html  # the link, escaped inside its attribute

    # The subject's link leads to a page listing this event (the timeline for job: subjects).
    linked = client.get(subjects.url_for(subject))
    assert linked.status_code == 200, subjects.url_for(subject)
    assert event.seq in [e.seq for e in linked.context["events"]]
    assert_no_raw_markup(linked.content.decode())
    timeline = client.get("/audit/jobs/", {"subject": subject})
    assert timeline.status_code == 200 and event.seq in [e.seq for e in timeline.context["events"]]
    assert_no_raw_markup(timeline.content.decode())
    by_request = client.get("/audit/", {"request_id": request_id})
    assert by_request.status_code == 200 and event.seq in [
        e.seq for e in by_request.context["events"]
    ]

    api = client.get(
        "/api/v1/audit/events", {"subject": subject, "actor": username, "order": "desc"}
    )
    assert (
        api.status_code == 200 and api.json()["results"][0]["seq"] == event.seq
    )  # values may repeat
    one = client.get(f"/api/v1/audit/events/{event.seq}")
    assert one.status_code == 200
    body = one.json()
    assert (body["subject"], body["actor"], body["request_id"]) == (subject, username, request_id)
    assert body["payload"]["purpose"] == purpose and body["payload"]["edits"] == {edit_name: 0.5}


# --- item 8: every error path is a 4xx ----------------------------------------------

FILTER_KEYS = [
    "actor",
    "action",
    "subject",
    "request_id",
    "date_from",
    "date_to",
    "seq",
    "before",
    "after",
    "since",
    "until",
    "after_seq",
    "before_seq",
    "order",
    "limit",
    "format",
]
NASTY_VALUES = [
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "10000-01-01",
    "2026-01-01T25:00:00Z",
    "2026-01-01T00:00:00+99:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "-1",
    "-9223372036854775809",
    "9223372036854775807",
    "9223372036854775808",
    "1" * 400,
    "1e400",
    "NaN",
    "١٢٣",
    "²",
    "１２",
    "0x10",
    "1.5",
    " 7 ",
    "job.unknown",
    "%00",
    "\ufeff",
    "",
    "<script>alert(1)</script>",
]

query_values = st.one_of(
    st.sampled_from(NASTY_VALUES),
    st.text(chars, max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
queries = st.lists(st.tuples(st.sampled_from(FILTER_KEYS), query_values), min_size=1, max_size=5)


KNOWN_BAD = [  # each once answered 500, or a page that silently ignored it
    [("date_from", "2026-02-30")],
    [("date_to", "9999-12-31")],
    [("seq", "9223372036854775808")],
    [("before", "²")],
    [("after", "1" * 400)],
    [("before", "-1")],
    [("action", "no.such.action")],
    [("subject", "x" * 201)],
    [("since", "9999-12-31T23:59:59-14:00")],
    [("format", "bogus")],
    [("after_seq", "١٢")],
    [("limit", "0")],
    [("subject", "%00")],
]


def with_known_bad(test):
    for query in KNOWN_BAD:
        test = example(query=query)(test)
    return test


@pytest.mark.django_db
@BOUNDED
@with_known_bad
@given(query=queries)
def test_any_query_to_the_reviewer_pages_is_a_4xx_page_or_a_result(reviewer_client, query):
    client = reviewer_client
    if not hasattr(client, "_seeded"):
        for i in range(3):
            audit_log.append_event(actions.JOB_QUEUED, subject=f"job-{i}")
        client._seeded = True
    qs = urlencode(query)
    for path in ("/audit/", "/audit/jobs/"):
        response = client.get(f"{path}?{qs}")
        assert response.status_code in (200, 400), (path, qs, response.status_code)
        if response.status_code == 400:
            assert (
                b"<html" in response.content.lower()
            )  # a styled page (base.html), not a bare error
        assert_no_raw_markup(response.content.decode())
    export = client.post("/audit/export/", dict(query))
    assert export.status_code in (200, 400), (qs, export.status_code)
    if export.status_code == 200:
        b"".join(export.streaming_content)


@pytest.mark.django_db
@BOUNDED
@with_known_bad
@given(query=queries)
def test_any_query_to_the_api_is_a_result_or_a_400_in_the_error_shape(reviewer_client, query):
    client = reviewer_client
    qs = urlencode(query)
    for path in ("/api/v1/audit/events", "/api/v1/audit/consistency"):
        response = client.get(f"{path}?{qs}")
        assert response.status_code in (200, 400), (path, qs, response.status_code)
        body = response.json()
        if response.status_code == 400:
            assert set(body) >= {"detail", "code", "field"} and body["detail"], body


@pytest.mark.django_db
@BOUNDED
@example(seq="9223372036854775808")
@example(seq="job:\x00")
@given(
    seq=st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(chars, max_size=30)
    )
)
def test_any_event_number_is_a_page_or_a_404(reviewer_client, seq):
    client = reviewer_client
    from urllib.parse import quote

    segment = quote(seq, safe="")
    for path in (
        f"/audit/events/{segment}/",
        f"/api/v1/audit/events/{segment}",
        f"/audit/jobs/{segment}/",
        f"/audit/jobs/{segment}/artifacts/{segment}",
    ):
        response = client.get(path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
