"""Property-based conformance of the REST API v1 to its own OpenAPI schema (schemathesis).

The live schema (/api/v1/schema) of the real Django app is loaded in-process over WSGI
and every operation is exercised with generated requests, once with an API key of each
scope and once with all of them, for one integration service account that owns a few
jobs (finished with artifacts, queued, awaiting approval) while the platform's model
bundle is present. Every response must: not be a 5xx; have a status code, content type,
headers and body the schema documents.

Generated path parameters are steered towards ids that exist (the account's jobs, real
event numbers), so the 200 paths are exercised, not only the 404s. POST /jobs gets
explicit valid and invalid uploads too: random bytes never make a decodable image.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.slow]

SCOPE_SETS = {
    "jobs-read": ("jobs:read",),
    "jobs-write": ("jobs:write",),
    "audit-read": ("audit:read",),
    "all": ("jobs:read", "jobs:write", "audit:read"),
}
MAX_EXAMPLES = 12


@contextlib.contextmanager
def connections_kept_open():
    """Run the real WSGI handler inside the test's transaction.

    Django's handler closes "old" connections at each request's start and end; inside
    the test transaction (autocommit off) that would close it. Django's own test client
    disconnects the same receiver for the same reason.
    """
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def service_account(db):
    from django.contrib.auth import get_user_model

    from editplatform.accounts.roles import INTEGRATION, ensure_groups

    user = get_user_model().objects.create_user(f"svc-fuzz-{uuid.uuid4().hex[:6]}", password=None)
    user.groups.add(ensure_groups()[INTEGRATION.name])
    return user


def raw_key(user, scopes) -> str:
    from editplatform.accounts.services import create_api_key

    return create_api_key(user, name=f"fuzz {'+'.join(scopes)}", scopes=list(scopes))[1]


@pytest.fixture
def platform(service_account, model_bundle):
    """The service account's jobs and a signed checkpoint covering their events."""
    from audit import log as audit_log
    from editplatform.jobs.models import EditJob
    from tests import catalog
    from tests.conftest import api_client_for
    from tests.jobs import images
    from tests.jobs.conftest import submit_via_api

    finished = finished_job(service_account)
    client = api_client_for(service_account, scopes=("jobs:write",))
    queued = submit_via_api(client, images.png())
    assert queued.status_code == 201, queued.content
    sensitive = [spec for spec in _catalog() if spec.sensitive]
    awaiting = None
    if sensitive:
        response = submit_via_api(client, images.jpeg(), edits=catalog.request_json(sensitive[0]))
        assert response.status_code == 201, response.content
        awaiting = response.json()["id"]
    jobs = [str(finished.pk), queued.json()["id"], *([awaiting] if awaiting else [])]
    assert EditJob.objects.filter(pk__in=jobs, requester=service_account).count() == len(jobs)
    audit_log.make_checkpoint()
    head = audit_log.read_head().size
    return {"jobs": jobs, "seqs": sorted({0, head // 2, head - 1})}


def finished_job(requester):
    """A succeeded job with stored artifacts of the media types the worker writes."""
    from editplatform.jobs import artifacts
    from editplatform.jobs.models import EditJob
    from tests.audit.helpers import png

    original = artifacts.store(png((200, 10, 10)), "image/png", width=16, height=16)
    return EditJob.objects.create(
        requester=requester,
        source="api",
        original=original,
        upload_sha256=original.sha256,
        upload_format="png",
        edits={"brightness": 0.5},
        purpose="schemathesis fixture",
        consent=True,
        params_sha256="0" * 64,
        state="succeeded",
        reconstruction=artifacts.store(png((10, 200, 10)), "image/png", width=16, height=16),
        edited=artifacts.store(png((10, 10, 200)), "image/png", width=16, height=16),
        latent=artifacts.store(b"\x00" * 64, "application/vnd.styleledger.latent+safetensors"),
    )


def _catalog():
    from editplatform.jobs import engine

    return engine.get_catalog().catalog


def load_schema(key: str):
    import schemathesis
    from django.core.wsgi import get_wsgi_application

    return schemathesis.openapi.from_wsgi(
        "/api/v1/schema?format=json",
        get_wsgi_application(),
        headers={"Authorization": f"Api-Key {key}"},
    )


def existing_ids_hook(schema, platform) -> None:
    """Path parameters: half of the time an id that exists."""
    job_ids = st.sampled_from([uuid.UUID(j) for j in platform["jobs"]])
    seqs = st.sampled_from(platform["seqs"])

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        params = dict(path_parameters or {})
        if "job_id" in params:
            return st.one_of(st.just(params), job_ids.map(lambda j: {**params, "job_id": str(j)}))
        if "seq" in params:
            return st.one_of(st.just(params), seqs.map(lambda s: {**params, "seq": s}))
        return st.just(params)


CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def conformance_checks():
    from schemathesis import checks

    return [getattr(checks, name) for name in CHECKS]


def fuzz(operation, auth: dict, statuses: set[int]) -> None:
    """Generated requests for one operation; raises schemathesis' FailureGroup on a failure."""
    checks = conformance_checks()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(headers=auth)
        statuses.add(response.status_code)
        case.validate_response(response, checks=checks, headers=auth)

    check()


def run_operations(schema, key: str) -> tuple[list[str], dict[str, set[int]]]:
    """Fuzz every operation; return each one's first failure and the statuses seen."""
    auth = {"Authorization": f"Api-Key {key}"}
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation, auth, seen.setdefault(operation.label, set()))
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # schemathesis raises a FailureGroup; collect them all
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures, seen


def explicit_uploads(schema, key: str) -> tuple[list[str], dict[str, int]]:
    """POST /jobs with uploads generation cannot make: a real image, and near misses."""
    from tests.jobs import images

    auth = {"Authorization": f"Api-Key {key}"}
    operation = schema["/api/v1/jobs"]["POST"]
    from tests import catalog

    form = {
        "edits": catalog.request_json(),
        "purpose": "Schemathesis explicit upload",
        "consent": "true",
    }
    cases = {
        "valid png": {**form, "image": images.png()},
        "valid jpeg, idempotent": {**form, "image": images.jpeg()},
        "not an image": {**form, "image": b"%PDF-1.4 definitely not a picture"},
        "truncated png": {**form, "image": images.png()[:60]},
        "unknown edit": {**form, "image": images.png(), "edits": '{"frown": 1}'},
        "edits not json": {**form, "image": images.png(), "edits": "{not json"},
        "no consent": {**form, "image": images.png(), "consent": "false"},
        "no purpose": {**form, "image": images.png(), "purpose": ""},
    }
    failures, statuses = [], {}
    for name, body in cases.items():
        headers = {**auth, "Idempotency-Key": "schemathesis-1"} if "idempotent" in name else auth
        case = operation.Case(body=body, media_type="multipart/form-data")
        response = case.call(headers=headers)
        statuses[name] = response.status_code
        try:
            case.validate_response(response, checks=conformance_checks(), headers=headers)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"POST /api/v1/jobs ({name}): {str(exc)[:1500]}")
    return failures, statuses


@pytest.mark.parametrize("scopes", list(SCOPE_SETS.values()), ids=list(SCOPE_SETS))
def test_every_operation_conforms_for_each_key_scope(scopes, service_account, platform):
    key = raw_key(service_account, scopes)
    with connections_kept_open():
        schema = load_schema(key)
        existing_ids_hook(schema, platform)
        failures, seen = run_operations(schema, key)
        upload_failures, uploads = explicit_uploads(schema, key)
    assert not failures + upload_failures, "\n\n".join(failures + upload_failures)

    # The generated requests reached the code behind the doors, not only the doors.
    assert {
        "GET /api/v1/audit/events",
        "GET /api/v1/audit/events/{seq}",
        "GET /api/v1/audit/checkpoint",
        "GET /api/v1/audit/consistency",
        "GET /api/v1/jobs",
        "POST /api/v1/jobs",
        "GET /api/v1/jobs/{job_id}",
        "GET /api/v1/jobs/{job_id}/artifacts/{kind}",
        "POST /api/v1/jobs/{job_id}/cancel",
        "GET /api/v1/edits",
        "POST /api/v1/jobs/{job_id}/approve",
    } <= set(seen)
    reads, writes, audit = (
        ("jobs:read" in scopes),
        ("jobs:write" in scopes),
        ("audit:read" in scopes),
    )
    assert (200 in seen["GET /api/v1/jobs/{job_id}"]) == reads
    assert (200 in seen["GET /api/v1/jobs/{job_id}/artifacts/{kind}"]) == reads
    assert (200 in seen["GET /api/v1/audit/events/{seq}"]) == audit
    assert (200 in seen["GET /api/v1/audit/events"]) == audit
    assert bool(seen["POST /api/v1/jobs/{job_id}/cancel"] & {200, 409}) == writes
    assert seen["POST /api/v1/jobs/{job_id}/approve"] == {403}  # keys never approve
    if writes:
        assert uploads["valid png"] == 201 and uploads["valid jpeg, idempotent"] == 201
        assert uploads["not an image"] == 415 and uploads["unknown edit"] == 400
        assert all(
            400 <= status < 500 for name, status in uploads.items() if not name.startswith("valid")
        )
    else:
        assert set(uploads.values()) == {403}


def test_the_served_schema_is_valid_openapi_and_documents_every_audit_response(service_account):
    from openapi_spec_validator import validate

    from tests.conftest import api_client_for

    response = api_client_for(service_account, scopes=("audit:read",)).get(
        "/api/v1/schema?format=json"
    )
    assert response.status_code == 200
    spec = json.loads(response.content)
    validate(spec)
    for path in (
        "/api/v1/audit/events",
        "/api/v1/audit/events/{seq}",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/consistency",
    ):
        documented = set(spec["paths"][path]["get"]["responses"])
        assert {"200", "401", "403"} <= documented, (path, documented)
    # framework answers are documented everywhere with the one error shape
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
    assert spec["paths"]["/api/v1/jobs"]["post"]["responses"]["429"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/ApiError"}
