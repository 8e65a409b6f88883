"""Quality mode and face choice per job: accepted, recorded, bound by params_sha256.

A requester (API or portal) chooses ``quality=fast|refine`` and, for face models, which
face (``face_index``); both change the result, so both are in the job's row, its
``job.submitted`` event and the parameter hash an approval binds to. A bad value is a
400 naming the field, with nothing stored.
"""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from editplatform.jobs import keyed_ids, policy
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from tests.jobs import images
from tests.jobs.conftest import api_client, stored_files, submit_via_api

pytestmark = pytest.mark.django_db


def _submit(user, photo: bytes, **extra) -> dict:
    response = submit_via_api(api_client(user), photo, extra=extra)
    assert response.status_code == 201, response.content
    return response.json()


def test_quality_is_recorded_and_bound_by_the_parameter_hash(
    requester, isolated_storage, model_bundle
):
    photo = images.png(seed=11)
    fast = _submit(requester, photo)
    refine = _submit(requester, photo, quality="refine")
    assert fast["quality"] == "fast" and refine["quality"] == "refine"
    job = EditJob.objects.get(pk=refine["id"])
    assert job.quality == "refine"
    # The same photo, edits and purpose: only the quality differs, and so does the hash.
    assert fast["params_sha256"] != refine["params_sha256"]
    assert refine["params_sha256"] == policy.params_sha256(
        job.original_id, job.edits, job.purpose, quality="refine"
    )
    assert fast["params_sha256"] == policy.params_sha256(job.original_id, job.edits, job.purpose)
    assert policy.job_params_sha256(job) == job.params_sha256 and not policy.is_tampered(job)
    submitted = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.submitted").payload
    assert submitted["quality"] == "refine"
    # The log records it keyed under the original's salt (issue 17).
    assert keyed_ids.confirm_derived(
        submitted["params_sha256"], "params_sha256", job.params_sha256, job.original
    )
    # Changing the quality on the row afterwards is tampering (an approval would not match).
    EditJob.objects.filter(pk=job.pk).update(quality="fast")
    job.refresh_from_db()
    assert policy.is_tampered(job)


def test_face_index_is_bound_by_the_parameter_hash(requester, isolated_storage, model_bundle):
    photo = images.png(seed=12)
    none = _submit(requester, photo)
    first = _submit(requester, photo, face_index="0")
    second = _submit(requester, photo, face_index="1")
    assert (none["face_index"], first["face_index"], second["face_index"]) == (None, 0, 1)
    assert len({none["params_sha256"], first["params_sha256"], second["params_sha256"]}) == 3
    job = EditJob.objects.get(pk=second["id"])
    assert job.params_sha256 == policy.params_sha256(
        job.original_id, job.edits, job.purpose, face_index=1
    )
    EditJob.objects.filter(pk=job.pk).update(face_index=0)  # the row says another face now
    job.refresh_from_db()
    assert policy.is_tampered(job)


@pytest.mark.parametrize("value", ["best", "REFINE!", "1", "fast "])
def test_bad_quality_is_400_naming_the_field_and_stores_nothing(
    value, requester, isolated_storage, model_bundle
):
    response = submit_via_api(api_client(requester), images.png(seed=13), extra={"quality": value})
    if value == "fast ":  # surrounding blanks are trimmed, as for the other text fields
        assert response.status_code == 201, response.content
        return
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_quality" and body["field"] == "quality"
    assert "fast" in body["detail"] and "refine" in body["detail"]
    assert EditJob.objects.count() == 0 and stored_files(isolated_storage) == []


def test_json_body_takes_quality_too(requester, isolated_storage, model_bundle):
    import base64

    from tests import catalog

    body = {
        "image_base64": base64.b64encode(images.png(seed=14)).decode(),
        "edits": catalog.request(catalog.plain()),
        "purpose": "Campaign photo retouch for test",
        "consent": True,
        "quality": "refine",
    }
    response = api_client(requester).post("/api/v1/jobs", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["quality"] == "refine"
    bad = api_client(requester).post("/api/v1/jobs", {**body, "quality": 3}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "quality"


def test_schema_documents_quality(requester, model_bundle):
    spec = api_client(requester).get("/api/v1/schema?format=json").json()
    schemas = spec["components"]["schemas"]
    created = [
        s
        for name, s in schemas.items()
        if "quality" in s.get("properties", {}) and "Create" in name
    ]
    assert created, sorted(schemas)
    for schema in created:
        prop = schema["properties"]["quality"]
        text = json.dumps(prop)
        assert "fast" in text and "refine" in text and prop.get("description")
    job = schemas["Job"]["properties"]
    assert "quality" in job


def test_portal_form_offers_quality_and_records_it(requester, isolated_storage, model_bundle):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests import catalog

    client = api_client(requester)
    page = client.get("/jobs/new/").content.decode()
    assert 'name="quality"' in page and 'value="refine"' in page
    spec = catalog.plain()
    form = {
        "image": SimpleUploadedFile("p.png", images.png(seed=15), content_type="image/png"),
        "purpose": "Campaign photo retouch for test",
        "consent": "on",
        f"edit_{spec.name}": str(catalog.strength(spec)),
        "quality": "refine",
    }
    response = client.post("/jobs/new/", form, format="multipart")
    assert response.status_code == 302, response.content[:500]
    job = EditJob.objects.get()
    assert job.quality == "refine"
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Refine" in detail
    form["image"] = SimpleUploadedFile("p.png", images.png(seed=16), content_type="image/png")
    form["quality"] = "bogus"
    bad = client.post("/jobs/new/", form, format="multipart")
    assert bad.status_code == 400 and "quality must be one of" in bad.content.decode()
    assert EditJob.objects.count() == 1


def test_approver_review_page_shows_the_domain_report_of_a_held_job(
    requester, approver, isolated_storage, model_bundle
):
    from tests import catalog

    sensitive = catalog.sensitive()
    body = submit_via_api(
        api_client(requester),
        images.png(seed=17),
        edits=json.dumps(catalog.request(sensitive)),
        extra={"quality": "refine"},
    ).json()
    report = {
        "gated": True,
        "in_domain": False,
        "ood_score": 77.25,
        "ood_max": 31.5,
        "psnr": 11.5,
        "psnr_min": 17.25,
        "ssim": 0.2,
        "ssim_min": 0.45,
        "reasons": ["ood", "psnr"],
        "explanation": "This photo is outside what the model can represent: test wording.",
        "domain": "Fashion-MNIST clothing items",
        "alignment": "object",
    }
    # The worker's outcome, written as it leaves it (held, with its report).
    EditJob.objects.filter(pk=body["id"]).update(
        state=State.AWAITING_APPROVAL, needs_approval=True, domain_report=report
    )
    page = api_client(approver).get(f"/approvals/{body['id']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="domain-report"' in html and "Outside the model's domain" in html
    assert "test wording" in html and "77.25" in html and "31.50" in html
    assert "11.50 dB" in html and "17.25" in html
    assert 'id="review-quality">Refine' in html
