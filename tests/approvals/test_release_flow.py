"""Compute, then release, end to end with a real worker, the portal and the API:
held outputs are 404 to the requester and the API, 200 to an approver; approval
releases them; a rejected job's outputs are gone from storage; every view and
download of the job, by anyone, is on its timeline with a summary."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from audit.models import AuditEvent
from audit.queries import filter_events
from editplatform.jobs import policy
from editplatform.jobs.models import EditJob, sealed_name
from editplatform.jobs.states import State
from tests import catalog
from tests.approvals.test_four_eyes import people, png  # noqa: F401 - fixture
from tests.conftest import api_client_for, mark_two_factor_verified
from tests.jobs.conftest import submit_via_api, wait_for, wait_for_state
from tests.jobs.helpers import logged


def portal(user) -> Client:
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


def submit_sensitive(user, seed: int) -> EditJob:
    response = submit_via_api(
        api_client_for(user), png(seed), edits=catalog.request_json(catalog.sensitive())
    )
    assert response.status_code == 201, response.content
    return wait_for_state(response.json()["id"], State.AWAITING_APPROVAL, timeout=120)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_held_outputs_are_for_approvers_until_approval_releases_them(celery_worker, people):  # noqa: F811
    req, ap1, rev = people["req"], people["ap1"], people["rev"]
    job = submit_sensitive(req, 21)
    api = api_client_for(req)
    # The requester (also an approver, but never for their own job) and the API see no result yet.
    assert api.get(f"/api/v1/jobs/{job.pk}/artifacts/edited").status_code == 404
    assert set(api.get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]) == {"original"}
    assert portal(req).get(f"/jobs/{job.pk}/artifacts/edited").status_code == 404
    detail = portal(req).get(f"/jobs/{job.pk}/").content.decode()
    assert "An approver is reviewing the result" in detail and 'id="img-edited"' not in detail
    # The approver sees the held result on the review page and can open it.
    approver = portal(ap1)
    review = approver.get(f"/approvals/{job.pk}/").content.decode()
    assert 'id="held-result"' in review and policy.outputs_sha256(job) in review
    assert approver.get(f"/jobs/{job.pk}/artifacts/edited").status_code == 200
    assert portal(rev).get(f"/jobs/{job.pk}/artifacts/edited").status_code == 200
    response = approver.post(
        f"/approvals/{job.pk}/decide",
        {
            "verdict": "approve",
            "params_sha256": job.params_sha256,
            "outputs_sha256": policy.outputs_sha256(job),
            "comment": "result checked against consent form",
        },
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED
    # Released: the requester downloads it; both pages show who decided, when, and why.
    download = api.get(f"/api/v1/jobs/{job.pk}/artifacts/edited")
    assert (
        download.status_code == 200
        and b"".join(download.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    )
    assert portal(req).get(f"/jobs/{job.pk}/artifacts/edited?download=1").status_code == 200
    for page in (portal(req).get(f"/jobs/{job.pk}/"), approver.get(f"/approvals/{job.pk}/")):
        text = page.content.decode()
        assert (
            page.status_code == 200
            and "ap1" in text
            and "result checked against consent form" in text
        )
    # Every view and download of the job by anyone is under the job's subject, with a summary.
    access = list(
        filter_events(subject=str(job.pk))
        .filter(action__in=["artifact.viewed", "artifact.downloaded"])
        .order_by("seq")
    )
    readers = {(event.actor_name, event.action) for event in access}
    assert {
        ("ap1", "artifact.viewed"),
        ("rev", "artifact.viewed"),
        ("req", "artifact.downloaded"),
    } <= readers
    assert all(
        event.subject == f"job:{job.pk}" and event.summary.startswith(event.actor_name)
        for event in access
    )
    # Each names the artifact it served: the held edit, or after release the marked copy
    # (provenance watermark + C2PA) that downloads serve.
    job.refresh_from_db()
    served = [sha for sha in (job.edited_id, job.marked_id) if sha]
    logged_as = {f"artifact:{logged(sha)}" for sha in served}  # keyed ids (issue 17)
    assert all(logged_as & set(event.subjects) for event in access)
    # A bare SHA-256 finds the same events through the artifact subject.
    found = set()
    for sha in served:
        found |= set(filter_events(subject=sha).values_list("seq", flat=True))
    assert found >= {e.seq for e in access}
    timeline = portal(rev).get(f"/audit/jobs/{job.pk}/").content.decode()
    for event in access:
        assert event.summary in timeline.replace("&#x27;", "'")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_rejected_jobs_held_outputs_are_gone_from_storage(celery_worker, people):  # noqa: F811
    job = submit_sensitive(people["req"], 22)
    held = policy.output_hashes(job)
    held_logged = {kind: logged(sha) for kind, sha in held.items()}  # keyed ids (issue 17)
    assert all(default_storage.exists(sealed_name(sha)) for sha in held.values())
    response = portal(people["ap2"]).post(
        f"/approvals/{job.pk}/decide", {"verdict": "reject", "reason": "the edit is too strong"}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == State.REJECTED
    wait_for(
        lambda: not any(default_storage.exists(sealed_name(sha)) for sha in held.values()),
        timeout=10,
        what="held outputs deleted from storage",
    )
    destroyed = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.outputs_destroyed")
    assert destroyed.payload["held_outputs"] == held_logged
    # The requester sees the decision and may resubmit with changes (the form is pre-filled).
    requester = portal(people["req"])
    page = requester.get(f"/jobs/{job.pk}/").content.decode()
    assert "the edit is too strong" in page and "ap2" in page and 'id="resubmit"' in page
    form = requester.get(f"/jobs/new/?resubmit={job.pk}").content.decode()
    assert job.purpose in form and str(job.pk) in form
    spec = catalog.sensitive()
    milder = catalog.strength(spec, 0.6)
    response = requester.post(
        "/jobs/new/",
        {
            "resubmit_from": str(job.pk),
            f"edit_{spec.name}": f"{milder:g}",
            "purpose": job.purpose,
            "consent": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    revised = EditJob.objects.get(resubmitted_from=job)
    assert revised.original_id == job.original_id and revised.edits == {spec.name: milder}
    assert "Revised by" in requester.get(f"/jobs/{job.pk}/").content.decode()
