"""The REST API of legal holds and erasure requests, with the pages' rules, on PostgreSQL.

Reviewers place and lift holds (four eyes), record and approve erasure requests (four
eyes), download the certificate; attackers (other roles, API keys, the same reviewer
twice, unknown ids) are refused with a status and a message naming the problem, and
nothing changes.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact, ArtifactKey
from editplatform.retention import erasure
from editplatform.retention.models import ErasureRequest, LegalHold
from tests.audit.helpers import make_user, sign_in
from tests.conftest import api_client_for
from tests.retention.test_retention import (  # noqa: F401 - fixtures
    _vkey,
    fast_hasher_and_storage,
    make_job,
    people,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOLDS = "/api/v1/retention/holds"
REQUESTS = "/api/v1/retention/requests"


def reviewer_client(user) -> APIClient:
    client = APIClient()
    sign_in(client, user)
    return client


@pytest.fixture
def clients(people):  # noqa: F811 - the imported fixture
    return {
        "rita": reviewer_client(people["rita"]),
        "rob": reviewer_client(people["rob"]),
        "alice": api_client_for(people["alice"]),  # a requester (session)
        "approver": reviewer_client(make_user("arno", "approver")),
        "key": api_client_for(make_user("svc", "integration")),  # an API key, every scope
    }


def test_hold_is_placed_with_a_reason_and_lifted_by_two_reviewers(people, clients):  # noqa: F811
    job, data = make_job(people["alice"], 11, ended_days_ago=0)
    rita, rob = clients["rita"], clients["rob"]
    for role in ("alice", "approver", "key"):
        refused = clients[role].post(HOLDS, {"job": str(job.pk), "reason": "x"}, format="json")
        assert refused.status_code == 403, (role, refused.content)
        assert refused.json()["code"] in ("permission_denied", "forbidden")
    assert "reviewer" in clients["alice"].post(HOLDS, {}, format="json").json()["detail"]
    assert "not available to API keys" in clients["key"].get(HOLDS).json()["detail"]
    assert APIClient().get(HOLDS).status_code == 401

    no_reason = rita.post(HOLDS, {"job": str(job.pk)}, format="json")
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    unknown = rita.post(
        HOLDS, {"job": "00000000-0000-0000-0000-000000000000", "reason": "case"}, format="json"
    )
    assert unknown.status_code == 400 and unknown.json()["field"] == "job"
    assert "no job with id 00000000" in unknown.json()["detail"]
    assert not LegalHold.objects.exists()

    placed = rita.post(HOLDS, {"job": str(job.pk), "reason": "litigation 17"}, format="json")
    assert placed.status_code == 201, placed.content
    hold = placed.json()
    assert hold["active"] and hold["placed_by"] == "rita" and hold["reason"] == "litigation 17"
    assert rob.get(f"{HOLDS}/{hold['id']}").json()["job"] == str(job.pk)
    assert [h["id"] for h in rob.get(HOLDS).json()] == [hold["id"]]

    missing = rob.post(f"{HOLDS}/999999/request-lift", {"reason": "x"}, format="json")
    assert missing.status_code == 404 and missing.json()["detail"] == "no legal hold 999999"
    early = rob.post(f"{HOLDS}/{hold['id']}/confirm-lift")
    assert early.status_code == 409 and early.json()["code"] == "lift_not_requested"
    asked = rita.post(f"{HOLDS}/{hold['id']}/request-lift", {"reason": "settled"}, format="json")
    assert asked.status_code == 200 and asked.json()["lift_requested_by"] == "rita"
    same = rita.post(f"{HOLDS}/{hold['id']}/confirm-lift")
    assert same.status_code == 403 and same.json()["code"] == "four_eyes"
    assert "second reviewer" in same.json()["detail"]
    for role in ("alice", "approver", "key"):
        assert clients[role].post(f"{HOLDS}/{hold['id']}/confirm-lift").status_code == 403
    assert LegalHold.objects.get().active  # nobody but a second reviewer lifted it

    lifted = rob.post(f"{HOLDS}/{hold['id']}/confirm-lift")
    assert lifted.status_code == 200, lifted.content
    assert not lifted.json()["active"] and lifted.json()["lifted_by"] == "rob"
    again = rob.post(f"{HOLDS}/{hold['id']}/confirm-lift")
    assert again.status_code == 409 and again.json()["code"] == "hold_lifted"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"legal_hold.placed", "legal_hold.lift_requested", "legal_hold.lifted"} <= actions
    assert artifacts.read(job.original) == data["original"]


def test_erasure_request_is_recorded_approved_by_another_reviewer_and_certified(
    people,  # noqa: F811
    clients,
):
    job, _ = make_job(people["alice"], 12, ended_days_ago=0)
    other, other_data = make_job(people["rita"], 13, ended_days_ago=0)
    rita, rob = clients["rita"], clients["rob"]
    for role in ("alice", "approver", "key"):
        refused = clients[role].post(
            REQUESTS, {"subject": "Alice", "jobs": [str(job.pk)]}, format="json"
        )
        assert refused.status_code == 403, (role, refused.content)
    nothing = rita.post(REQUESTS, {"subject": "Alice"}, format="json")
    assert nothing.status_code == 400 and nothing.json()["field"] == "jobs"
    unknown = rita.post(REQUESTS, {"subject": "Alice", "requester": "nobody"}, format="json")
    assert unknown.status_code == 400 and "no account named 'nobody'" in unknown.json()["detail"]
    bad_id = rita.post(REQUESTS, {"subject": "Alice", "jobs": ["not-a-uuid"]}, format="json")
    assert bad_id.status_code == 400 and bad_id.json()["field"] == "jobs"
    assert not ErasureRequest.objects.exists()

    recorded = rita.post(
        REQUESTS,
        {"subject": "Alice A.", "jobs": [str(job.pk)], "note": "letter of 29 Nov"},
        format="json",
    )
    assert recorded.status_code == 201, recorded.content
    request = recorded.json()
    assert request["state"] == "recorded" and request["jobs"] == [str(job.pk)]
    assert request["certificate_url"] is None
    url = f"{REQUESTS}/{request['id']}"
    assert rob.get(f"{url}/certificate").status_code == 404

    same = rita.post(f"{url}/approve")
    assert same.status_code == 403 and same.json()["code"] == "four_eyes"
    for role in ("alice", "approver", "key"):
        assert clients[role].post(f"{url}/approve").status_code == 403
    missing = rob.post(f"{REQUESTS}/999999/approve")
    assert missing.status_code == 404 and missing.json()["detail"] == "no erasure request 999999"
    assert not Artifact.objects.filter(erased_at__isnull=False).exists()

    approved = rob.post(f"{url}/approve")
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["state"] == "erased" and body["approved_by"] == "rob"
    for sha in (job.original_id, job.edited_id, job.latent_id):
        assert Artifact.objects.get(pk=sha).erased_at is not None
        assert not ArtifactKey.objects.filter(pk=sha).exists()
    assert artifacts.read(other.original) == other_data["original"]
    twice = rob.post(f"{url}/approve")
    assert twice.status_code == 409 and twice.json()["code"] == "already_erased"

    download = rita.get(body["certificate_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="erasure-{body["id"]}.json"'
    certificate = download.json()
    assert len(certificate["artifacts"]) == 3
    erasure.verify_certificate(certificate, _vkey())
    assert clients["alice"].get(body["certificate_url"]).status_code == 403
    assert clients["key"].get(body["certificate_url"]).status_code == 403


def test_a_hold_refuses_the_whole_erasure_over_the_api(people, clients):  # noqa: F811
    job, data = make_job(people["alice"], 14, ended_days_ago=0)
    rita, rob = clients["rita"], clients["rob"]
    assert (
        rita.post(HOLDS, {"job": str(job.pk), "reason": "audit"}, format="json").status_code == 201
    )
    recorded = rob.post(REQUESTS, {"subject": "Alice", "jobs": [str(job.pk)]}, format="json")
    refused = rita.post(f"{REQUESTS}/{recorded.json()['id']}/approve")
    assert refused.status_code == 409 and refused.json()["code"] == "shred_blocked"
    assert "legal hold" in refused.json()["detail"]
    assert ErasureRequest.objects.get().state == "recorded"
    assert artifacts.read(job.original) == data["original"]


def test_the_schema_documents_every_retention_operation(clients):
    schema = APIClient().get("/api/v1/schema?format=json").json()
    paths = schema["paths"]
    for path, methods in {
        HOLDS: {"get", "post"},
        HOLDS + "/{id}": {"get"},
        HOLDS + "/{id}/request-lift": {"post"},
        HOLDS + "/{id}/confirm-lift": {"post"},
        REQUESTS: {"get", "post"},
        REQUESTS + "/{id}": {"get"},
        REQUESTS + "/{id}/approve": {"post"},
        REQUESTS + "/{id}/certificate": {"get"},
        "/api/v1/retention/photo-lookup": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
    post_hold = paths[HOLDS]["post"]
    assert {"201", "400", "403", "409"} <= set(post_hold["responses"])
    assert (
        "four_eyes" in paths[REQUESTS + "/{id}/approve"]["post"]["responses"]["403"]["description"]
    )
