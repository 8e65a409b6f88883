"""Bad input to the audit pages and API: a styled 400 naming the field, or a JSON 400/404."""

from __future__ import annotations

import pytest

from audit import log as audit_log
from audit.models import AuditEvent
from tests.audit import action_names as actions
from tests.audit.helpers import make_user, sign_in

pytestmark = pytest.mark.postgres


@pytest.mark.django_db
def test_bad_filters_and_cursors_answer_a_styled_400_naming_the_problem(fresh_log, client):
    sign_in(client, make_user("rev", "reviewer"))
    for i in range(3):
        audit_log.append_event(actions.JOB_QUEUED, subject=f"job-{i}")
    impossible = client.get("/audit/", {"date_from": "2026-02-30"})
    assert (
        impossible.status_code == 400 and impossible.context["events"] == []
    )  # no rows for a filter that means nothing
    assert b"Enter a valid date" in impossible.content and b"<form" in impossible.content
    huge = client.get("/audit/", {"seq": str(2**63)})
    assert huge.status_code == 400 and b"less than or equal to" in huge.content
    assert client.get("/audit/", {"action": "no.such.action"}).status_code == 400
    for cursor in ("²", "1" * 400, "-5", "abc"):
        garbled = client.get("/audit/", {"before": cursor})
        assert (
            garbled.status_code == 400
            and b'id="bad-request"' in garbled.content
            and b"before:" in garbled.content
        )
    last_day = client.get("/audit/", {"date_from": "2026-01-01", "date_to": "9999-12-31"})
    assert (
        last_day.status_code == 200
        and len(last_day.context["events"]) == AuditEvent.objects.count()
    )
    assert client.get(f"/audit/events/{2**63}/").status_code == 404
    assert client.get("/audit/jobs/").status_code == 400  # which subject?
    assert client.get("/audit/jobs/job:%00/").status_code == 400
    exports = AuditEvent.objects.filter(action=actions.AUDIT_EXPORTED).count()
    refused = client.post("/audit/export/", {"date_to": "2026-02-30", "format": "csv"})
    assert refused.status_code == 400 and b"date_to:" in refused.content
    assert (
        AuditEvent.objects.filter(action=actions.AUDIT_EXPORTED).count() == exports
    )  # nothing half-done


@pytest.mark.django_db
def test_the_api_names_the_bad_parameter(fresh_log, client):
    sign_in(client, make_user("rev", "reviewer"))
    for params, field in (
        ({"since": "2026-02-30T00:00:00Z"}, "since"),
        ({"after_seq": "²"}, "after_seq"),
        ({"before_seq": str(2**64)}, "before_seq"),
        ({"format": "bogus"}, "format"),
        ({"action": "no.such.action"}, "action"),
    ):
        response = client.get("/api/v1/audit/events", params)
        assert response.status_code == 400, params
        body = response.json()
        assert body["field"] == field and body["code"] == "invalid" and body["detail"], body
    assert client.get(f"/api/v1/audit/events/{2**64}").status_code == 404


@pytest.mark.django_db
def test_subjects_with_spaces_and_slashes_reach_their_own_page(fresh_log, client):
    """Filters match stored strings exactly (no trimming), and job subjects with any
    character reach the timeline through its query-string form."""
    sign_in(client, make_user("rev", "reviewer"))
    padded = audit_log.append_event(actions.JOB_QUEUED, subject=" job-1 ")
    audit_log.append_event(actions.JOB_QUEUED, subject="job-1")
    slashed = audit_log.append_event(actions.JOB_QUEUED, subject="job:a/b")
    assert [e.seq for e in client.get("/audit/", {"subject": " job-1 "}).context["events"]] == [
        padded.seq
    ]
    api = client.get("/api/v1/audit/events", {"subject": " job-1 "}).json()["results"]
    assert [e["seq"] for e in api] == [padded.seq]
    page = client.get("/audit/").content.decode()
    assert 'href="/audit/jobs/?subject=job%3Aa%2Fb"' in page
    timeline = client.get("/audit/jobs/", {"subject": "job:a/b"})
    assert timeline.status_code == 200 and [e.seq for e in timeline.context["events"]] == [
        slashed.seq
    ]
