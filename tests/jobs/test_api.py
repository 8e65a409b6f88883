"""REST API v1 without a worker: validation, access rules, idempotency, listing, schema."""

from __future__ import annotations

import json

import pytest

from editplatform.approvals import services as approvals
from editplatform.core.errors import DomainError
from editplatform.jobs import policy, services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.tasks import run_edit_job
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import api_client, submit_via_api
from tests.jobs.helpers import logged

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_job(requester, isolated_storage, model_bundle):
    response = submit_via_api(api_client(requester), images.png())
    assert response.status_code == 201, response.content
    return EditJob.objects.get(pk=response.json()["id"])


def test_submit_answers_201_with_location_and_queues(
    requester, isolated_storage, model_bundle, bundle
):
    first = catalog.plain()
    second = catalog.other_than(first)
    edits = {first.name: catalog.strength(first), second.name: 0}
    response = submit_via_api(api_client(requester), images.jpeg(), edits=json.dumps(edits))
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == f"/api/v1/jobs/{body['id']}"
    assert body["state"] == "queued" and body["edits"] == catalog.request(
        first
    )  # zero strengths dropped
    assert body["needs_approval"] is False and body["requester"] == "alice"
    assert set(body["artifacts"]) == {"original"}


@pytest.mark.parametrize(
    ("make_edits", "status", "code", "make_words"),
    [
        (lambda p: '{"frown": 1}', 400, "unknown_edit", lambda p: "unknown edit 'frown'"),
        (
            lambda p: json.dumps({p.name: p.max_strength + 6}),
            400,
            "strength_out_of_range",
            lambda p: f"allowed: {p.min_strength:g} to {p.max_strength:g}",
        ),
        (lambda p: json.dumps({p.name: "a lot"}), 400, "strength_out_of_range", lambda p: p.name),
        (lambda p: "not json", 400, "edits_not_json", lambda p: "JSON"),
        (lambda p: "[1, 2]", 400, "edits_not_object", lambda p: "JSON object"),
    ],
    ids=["unknown", "out-of-range", "not-a-number", "not-json", "not-an-object"],
)
def test_bad_edits_are_400_naming_the_problem(
    make_edits, status, code, make_words, requester, isolated_storage, model_bundle
):
    edits, words = make_edits(catalog.plain()), make_words(catalog.plain())
    response = submit_via_api(api_client(requester), images.png(), edits=edits)
    assert response.status_code == status
    assert response.json()["code"] == code and words in response.json()["detail"]
    assert EditJob.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("purpose", "", "purpose_required"),
        ("purpose", "x" * 1001, "purpose_too_long"),
        ("consent", "false", "consent_required"),
        ("consent", "", "consent_required"),
    ],
)
def test_purpose_and_consent_are_required(
    field, value, code, requester, isolated_storage, model_bundle
):
    response = submit_via_api(api_client(requester), images.png(), **{field: value})
    assert response.status_code == 400 and response.json()["code"] == code
    assert EditJob.objects.count() == 0


def test_missing_image_is_400(requester, isolated_storage, model_bundle):
    response = api_client(requester).post(
        "/api/v1/jobs", {"edits": "{}", "purpose": "p" * 20, "consent": "true"}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["code"] == "missing"


def test_anonymous_and_roleless_users_cannot_submit(make_user, isolated_storage, model_bundle):
    assert submit_via_api(api_client(), images.png()).status_code in (401, 403)
    nobody = make_user("nobody")
    assert submit_via_api(api_client(nobody), images.png()).status_code == 403
    assert EditJob.objects.count() == 0


def test_integration_may_submit(integration, isolated_storage, model_bundle):
    response = submit_via_api(api_client(integration), images.png())
    assert response.status_code == 201 and response.json()["source"] == "api"


def test_idempotency_key_replays_and_refuses_reuse(requester, isolated_storage, model_bundle):
    client = api_client(requester)
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4711"}
    first = submit_via_api(client, images.png(), headers=headers)
    again = submit_via_api(client, images.png(), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    other = submit_via_api(
        client, images.png(), edits=catalog.request_json(fraction=0.25), headers=headers
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert EditJob.objects.count() == 1


def test_sensitive_edit_is_held_for_approval_and_approval_binds_parameters(
    requester, approver, isolated_storage, model_bundle, bundle
):
    sensitive = next(spec.name for spec in bundle.catalog if spec.sensitive)
    response = submit_via_api(api_client(requester), images.png(), edits=f'{{"{sensitive}": 1}}')
    assert response.status_code == 201 and response.json()["state"] == "queued"  # computed first
    job = EditJob.objects.get(pk=response.json()["id"])
    assert (
        api_client(approver).get(f"/api/v1/jobs/{job.pk}").status_code == 404
    )  # nothing to decide yet
    run_edit_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL
    # The approver sees it while it is held; the requester's API sees no output yet.
    assert api_client(approver).get(f"/api/v1/jobs/{job.pk}").status_code == 200
    assert api_client(requester).get(f"/api/v1/jobs/{job.pk}/artifacts/edited").status_code == 404
    assert set(api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]) == {
        "original"
    }
    with pytest.raises(DomainError, match="parameters changed"):
        approvals.approve(
            job, approver, params_sha256="0" * 64, outputs_sha256=policy.outputs_sha256(job)
        )
    approvals.approve(
        job, approver, params_sha256=job.params_sha256, outputs_sha256=policy.outputs_sha256(job)
    )
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED and job.approved_params_sha256 == job.params_sha256
    assert api_client(requester).get(f"/api/v1/jobs/{job.pk}/artifacts/edited").status_code == 200


def test_access_is_decided_by_visible_to(alice_job, other_requester, reviewer, approver):
    url = f"/api/v1/jobs/{alice_job.pk}"
    assert api_client(other_requester).get(url).status_code == 404  # no IDOR, no existence oracle
    assert api_client(other_requester).get(url + "/artifacts/original").status_code == 404
    assert api_client(other_requester).post(url + "/cancel").status_code == 404
    assert api_client(approver).get(url).status_code == 404  # queued, not awaiting approval
    assert api_client(reviewer).get(url).status_code == 200
    assert (
        api_client(reviewer).post(url + "/cancel").status_code == 403
    )  # reviewers read, never act
    listing = api_client(other_requester).get("/api/v1/jobs").json()
    assert listing["results"] == []


def test_artifact_download_streams_bytes_and_is_audited(alice_job, reviewer):
    from audit.models import AuditEvent

    response = api_client(reviewer).get(f"/api/v1/jobs/{alice_job.pk}/artifacts/original")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert (
        "attachment" in response["Content-Disposition"]
        and response["Cache-Control"] == "private, no-store"
    )
    data = b"".join(response.streaming_content)
    import hashlib

    assert hashlib.sha256(data).hexdigest() == alice_job.original_id
    # The job is the event's subject (its timeline lists the download); the artifact is named too.
    event = AuditEvent.objects.get(action="artifact.downloaded", subject=f"job:{alice_job.pk}")
    assert event.actor_name == "rita" and event.payload["job"] == str(alice_job.pk)
    assert event.subjects == [f"job:{alice_job.pk}", f"artifact:{logged(alice_job.original_id)}"]
    assert (
        event.summary
        == f"rita downloaded the original of job {str(alice_job.pk)[:8]} (api download)"
    )
    assert (
        api_client(reviewer).get(f"/api/v1/jobs/{alice_job.pk}/artifacts/edited").status_code == 404
    )
    assert (
        api_client(reviewer).get(f"/api/v1/jobs/{alice_job.pk}/artifacts/secrets").status_code
        == 404
    )


def test_cancel_a_queued_job_once(alice_job, requester):
    from tests.jobs.conftest import audit_count

    client = api_client(requester)
    response = client.post(f"/api/v1/jobs/{alice_job.pk}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{alice_job.pk}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    assert audit_count(alice_job.pk, "job.cancelled") == 1
    assert [audit_count(alice_job.pk, a) for a in ("job.submitted", "job.queued")] == [1, 1]


def test_list_filters_and_paginates(requester, isolated_storage, model_bundle):
    client = api_client(requester)
    ids = [submit_via_api(client, images.png(seed=i)).json()["id"] for i in range(3)]
    services.cancel(EditJob.objects.get(pk=ids[0]), requester)
    page = client.get("/api/v1/jobs?page_size=2").json()
    assert [j["id"] for j in page["results"]] == ids[::-1][:2] and page["next"]
    rest = client.get(page["next"]).json()
    assert [j["id"] for j in rest["results"]] == [ids[0]]
    assert [j["id"] for j in client.get("/api/v1/jobs?state=cancelled").json()["results"]] == [
        ids[0]
    ]
    assert len(client.get("/api/v1/jobs?state=queued,cancelled").json()["results"]) == 3
    assert client.get("/api/v1/jobs?created_after=2000-01-01").json()["results"]
    assert client.get("/api/v1/jobs?created_before=2000-01-01").json()["results"] == []
    assert client.get("/api/v1/jobs?state=bogus").status_code == 400
    assert client.get("/api/v1/jobs?created_after=yesterday").status_code == 400


def test_edit_catalog_comes_from_the_bundle(requester, model_bundle, bundle):
    body = api_client(requester).get("/api/v1/edits").json()
    assert body["model_version"] == bundle.version
    assert [e["name"] for e in body["edits"]] == bundle.catalog.names
    assert any(e["sensitive"] for e in body["edits"])


def test_openapi_schema_validates(requester, model_bundle):
    import yaml
    from openapi_spec_validator import validate

    client = api_client()
    client.force_login(requester)  # the schema and docs views use session authentication
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/artifacts/{kind}",
        "/api/v1/edits",
    ):
        assert path in schema["paths"], path
    assert (
        "multipart/form-data" in schema["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    )
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
