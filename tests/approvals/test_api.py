"""The approvals REST endpoints: approver sessions only, one error shape, bound to the
parameters and the held outputs."""

from __future__ import annotations

from editplatform.jobs import policy
from editplatform.jobs.states import State
from tests.approvals.test_four_eyes import people, sensitive_job  # noqa: F401 - fixture
from tests.conftest import api_client_for


def body(job, **overrides):
    return {
        "params_sha256": job.params_sha256,
        "outputs_sha256": policy.outputs_sha256(job),
        **overrides,
    }


def test_an_approver_approves_through_the_api(people):  # noqa: F811
    job = sensitive_job(people["req"])
    response = api_client_for(people["ap1"]).post(
        f"/api/v1/jobs/{job.pk}/approve", body(job), format="json"
    )
    assert response.status_code == 200 and response.json() == {
        "id": str(job.pk),
        "state": State.SUCCEEDED,
    }


def test_refusals_name_the_problem_with_a_code(people):  # noqa: F811
    job = sensitive_job(people["req"])
    own = api_client_for(people["req"]).post(
        f"/api/v1/jobs/{job.pk}/approve", body(job), format="json"
    )
    assert (
        own.status_code == 403
        and own.json()["code"] == "permission_denied"
        and "own job" in own.json()["detail"]
    )
    stale = api_client_for(people["ap1"]).post(
        f"/api/v1/jobs/{job.pk}/approve", body(job, params_sha256="a" * 64), format="json"
    )
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    swapped = api_client_for(people["ap1"]).post(
        f"/api/v1/jobs/{job.pk}/approve", body(job, outputs_sha256="b" * 64), format="json"
    )
    assert swapped.status_code == 409 and "outputs" in swapped.json()["detail"]
    missing = api_client_for(people["ap1"]).post(
        f"/api/v1/jobs/{job.pk}/approve", {"params_sha256": job.params_sha256}, format="json"
    )
    assert missing.status_code == 400 and missing.json()["field"] == "outputs_sha256"
    no_reason = api_client_for(people["ap1"]).post(
        f"/api/v1/jobs/{job.pk}/reject", {}, format="json"
    )
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    reviewer = api_client_for(people["rev"]).post(
        f"/api/v1/jobs/{job.pk}/reject", {"reason": "no"}, format="json"
    )
    assert reviewer.status_code == 403
