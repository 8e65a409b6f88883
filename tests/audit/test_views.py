"""The reviewer's audit-trail pages (Django test client on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audit import log as audit_log
from audit.models import AuditEvent
from editplatform.jobs import artifacts
from tests.audit import action_names as actions
from tests.audit.conftest import triggers_disabled
from tests.audit.helpers import make_job_with_outputs, make_user, sign_in
from tests.jobs.helpers import logged

pytestmark = pytest.mark.postgres


@pytest.mark.django_db
def test_only_reviewers_see_the_audit_trail(fresh_log, client):
    assert client.get("/audit/").status_code == 302  # anonymous: to the sign-in page
    assert "/login/" in client.get("/audit/")["Location"]
    for role in ("requester", "approver", "admin"):
        user = make_user(f"u-{role}", role)
        sign_in(client, user)
        for url in ("/audit/", "/audit/verify/", "/audit/events/0/", "/audit/jobs/x/"):
            assert client.get(url).status_code == 403, (role, url)
        client.logout()
    sign_in(client, make_user("rev", "reviewer"))
    page = client.get("/audit/")
    assert page.status_code == 200 and b"Audit trail" in page.content
    assert b'href="/audit/"' in client.get("/").content  # nav link for reviewers


@pytest.mark.django_db
def test_filters_and_keyset_pagination(fresh_log, client):
    reviewer = make_user("rev", "reviewer")
    sign_in(client, reviewer)
    for i in range(120):
        audit_log.append_event(
            actions.JOB_QUEUED if i % 3 else actions.JOB_FAILED,
            subject=f"job-{i % 4}",
            actor_name="worker-7" if i % 2 else "",
            request_id=f"req-{i:08d}",
        )
    first = client.get("/audit/", {"action": actions.JOB_FAILED})
    rows = first.context["events"]
    assert len(rows) == 40 and all(e.action == actions.JOB_FAILED for e in rows)
    everything = client.get("/audit/").context
    assert len(everything["events"]) == 50 and everything["has_older"]
    newest = [e.seq for e in everything["events"]]
    older = client.get("/audit/", {"before": newest[-1]}).context["events"]
    assert [e.seq for e in older] == list(range(newest[-1] - 1, newest[-1] - 51, -1))
    back = client.get("/audit/", {"after": older[0].seq}).context["events"]
    assert [e.seq for e in back] == newest
    combined = client.get("/audit/", {"subject": "job-1", "actor": "worker-7"}).context["events"]
    assert combined and all(e.subject == "job-1" and e.actor_name == "worker-7" for e in combined)
    assert [e.seq for e in client.get("/audit/", {"seq": 7}).context["events"]] == [7]
    nine = AuditEvent.objects.get(request_id="req-00000009").seq
    assert [
        e.seq for e in client.get("/audit/", {"request_id": "req-00000009"}).context["events"]
    ] == [nine]
    today = dt.datetime.now(dt.UTC).date()
    assert (
        len(
            client.get(
                "/audit/", {"date_from": today.isoformat(), "date_to": today.isoformat()}
            ).context["events"]
        )
        == 50
    )
    assert (
        client.get("/audit/", {"date_to": (today - dt.timedelta(days=1)).isoformat()}).context[
            "events"
        ]
        == []
    )


@pytest.mark.django_db
def test_event_detail_shows_a_verified_mark_only_for_a_valid_proof(fresh_log, client):
    sign_in(client, make_user("rev", "reviewer"))
    events = [
        audit_log.append_event(actions.JOB_QUEUED, subject="j", payload={"i": i}) for i in range(10)
    ]
    last, fourth = events[-1].seq, events[4].seq
    uncovered = client.get(f"/audit/events/{last}/")
    assert b'id="unverified-mark"' in uncovered.content and b"not yet covered" in uncovered.content
    audit_log.make_checkpoint()
    page = client.get(f"/audit/events/{fourth}/")
    assert page.status_code == 200 and b'id="verified-mark"' in page.content
    assert AuditEvent.objects.get(seq=fourth).leaf_hex.encode() in page.content
    from django.db import connection

    with triggers_disabled(connection), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_event SET entry = replace(entry, '\"i\":4', '\"i\":5') WHERE seq = %s",
            [fourth],
        )
    tampered = client.get(f"/audit/events/{fourth}/")
    assert b'id="verified-mark"' not in tampered.content and b"not verified" in tampered.content


@pytest.mark.django_db
def test_job_timeline_links_original_latent_outputs_and_logs_the_page_view_once(
    fresh_log, client, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "s")},
        },
    }
    requester = make_user("req", "requester")
    job = make_job_with_outputs(requester)
    reviewer = make_user("rev", "reviewer")
    sign_in(client, reviewer)
    page = client.get(f"/audit/jobs/{job.pk}/")  # a bare job id finds the job's timeline
    assert page.status_code == 200
    chain = page.context["chain"]
    assert chain["original"]["sha256"] == job.original.sha256
    assert chain["latent"]["sha256"] == job.latent.sha256
    assert chain["outputs"]["edited"]["sha256"] == job.edited.sha256
    thumbnail = chain["outputs"]["edited"]["thumbnail"]
    assert "thumbnail" not in chain["latent"]  # not an image
    # The page view is one event naming the thumbnails it shows; the renders are not logged.
    shown = AuditEvent.objects.get(action="compliance.timeline_viewed")
    assert shown.subject == f"job:{job.pk}" and shown.actor_name == "rev"
    # Named by keyed commitments (issue 17), which the key row ties to the artifact.
    assert shown.payload["thumbnails"]["edited"] == logged(job.edited.sha256)
    assert f"artifact:{logged(job.edited.sha256)}" in shown.subjects
    assert "timeline of job" in shown.summary
    before = AuditEvent.objects.count()
    image = client.get(thumbnail)
    assert (
        image.status_code == 200
        and image["Content-Type"] == "image/png"
        and image.content.startswith(b"\x89PNG")
    )
    assert AuditEvent.objects.count() == before
    # The full image is a logged view under the job's subject.
    full = client.get(thumbnail + "?full=1")
    assert full.status_code == 200 and full.content == artifacts.read(job.edited)
    viewed = AuditEvent.objects.filter(action=actions.ARTIFACT_VIEWED).order_by("-seq").first()
    assert AuditEvent.objects.count() == before + 1
    assert (
        viewed.subject == f"job:{job.pk}"
        and viewed.actor_name == "rev"
        and viewed.payload["sha256"] == logged(job.edited.sha256)
    )
    assert viewed.summary.startswith("rev viewed the edited of job")
    assert client.get(f"/audit/jobs/job:{job.pk}/artifacts/{'f' * 64}").status_code == 404


@pytest.mark.django_db
def test_verify_action_and_export_download(fresh_log, client):
    sign_in(client, make_user("rev", "reviewer"))
    for i in range(5):
        audit_log.append_event(actions.JOB_QUEUED, subject="j", payload={"i": i})
    result = client.post("/audit/verify/")
    assert result.status_code == 200 and result.context["result"].ok
    assert AuditEvent.objects.filter(action=actions.AUDIT_VERIFIED, actor_name="rev").exists()
    export = client.post("/audit/export/", {"format": "jsonl", "subject": "j"})
    body = b"".join(export.streaming_content).decode()
    assert export.status_code == 200
    assert json.loads(body.split("\n", 1)[0])["format"] == "styleledger-audit-export/2"
    assert body.count('"type": "event"') == 5
    assert client.get("/audit/public-key").content.decode().startswith("styleledger.local/audit+")


@pytest.mark.django_db
def test_access_is_the_view_auditevent_permission_with_a_second_factor(fresh_log, client):
    """The reviewer role reads through the role table's grant; anyone granted the
    permission directly reads too, but only once the session passed a second factor."""
    from django.contrib.auth.models import Group, Permission

    from tests.conftest import mark_two_factor_verified

    assert (
        Group.objects.get(name="reviewer")
        .permissions.filter(content_type__app_label="audit", codename="view_auditevent")
        .exists()
    )
    auditor = make_user("outside-auditor", None)  # no role at all
    sign_in(client, auditor)
    assert client.get("/audit/").status_code == 403
    auditor.user_permissions.add(
        Permission.objects.get(content_type__app_label="audit", codename="view_auditevent")
    )
    assert client.get("/audit/").status_code == 403
    unverified = client.get("/api/v1/audit/events")
    assert unverified.status_code == 403 and "second factor" in unverified.json()["detail"]
    mark_two_factor_verified(client, auditor)
    assert client.get("/audit/").status_code == 200
    assert client.get("/api/v1/audit/events").status_code == 200


@pytest.mark.django_db
def test_subjects_link_to_the_page_their_app_registered(fresh_log, client):
    sign_in(client, make_user("rev", "reviewer"))
    audit_log.append_event(actions.JOB_QUEUED, subject="job:1234")
    audit_log.append_event(actions.USER_LOGIN, subject="user:7")
    page = client.get("/audit/").content.decode()
    assert 'href="/audit/jobs/?subject=job%3A1234"' in page  # the compliance app's job timeline
    assert 'href="/audit/?subject=user%3A7"' in page  # everything else: the filtered list
