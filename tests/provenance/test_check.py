"""'Was this made here?' through the API (scope provenance:check) and the reviewer page;
every check is an audit event."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from audit.models import AuditEvent
from editplatform.provenance import attacks, check_keys, corpus
from editplatform.provenance.services import mark_output
from tests.conftest import api_client_for
from tests.provenance.conftest import clone_job, png_bytes, run_real_job


def _upload(data: bytes, name: str = "image.png"):
    return {"image": SimpleUploadedFile(name, data, content_type="application/octet-stream")}


def _checks() -> int:
    return AuditEvent.objects.filter(action="provenance.checked").count()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_api_and_page_answer_with_the_job_and_record_every_check(
    worker, requester, integration, reviewer
):
    job = run_real_job(requester)
    big, event = clone_job(job)  # a full-resolution output (the demo model renders 32x32)
    marked = mark_output(big, png_bytes(corpus.outputs(1)[0]), audit_event=event)
    checker = api_client_for(integration, scopes=("provenance:check",))

    response = checker.post("/api/v1/provenance/check", _upload(marked.data), format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["made_here"] and body["manifest"]["state"] == "Trusted"
    assert (
        body["watermark"]["resolved"] and body["watermark"]["key"] == f"{marked.watermark_key:08x}"
    )
    (match,) = body["jobs"]
    assert match["job_id"] == str(big.pk) and match["requester"] == requester.username
    assert (
        match["purpose"] == big.purpose
        and match["proofs"][0]["event"]["seq"] == marked.manifest_info["event"]["seq"]
    )
    assert "manifest (Trusted)" in match["evidence"]
    event = AuditEvent.objects.get(seq=body["audit_seq"])
    assert event.action == "provenance.checked" and event.actor_name == integration.username
    assert event.payload["jobs"] == [str(big.pk)] and event.payload["made_here"] is True
    # the checked image is named by a keyed hash under a per-check salt (issue 17), never
    # its SHA-256: a copy cannot be matched once the salt is shredded
    plain = hashlib.sha256(marked.data).hexdigest()
    assert body["sha256"] == plain and plain not in str((event.subject, event.payload))
    assert event.payload["image_ids"] == "keyed-check-v1"
    assert check_keys.confirm(event.payload, marked.data)

    # Stripped and recompressed: no manifest, still traced by watermark and fingerprints.
    stripped = attacks.jpeg(attacks.strip(Image.open(io.BytesIO(marked.data)).convert("RGB")), 75)
    buffer = io.BytesIO()
    stripped.save(buffer, format="JPEG", quality=95)
    body = checker.post(
        "/api/v1/provenance/check", _upload(buffer.getvalue(), "x.jpg"), format="multipart"
    ).json()
    assert (
        body["made_here"]
        and not body["manifest"]["present"]
        and body["jobs"][0]["job_id"] == str(big.pk)
    )

    # An unrelated image: no match, with the distances.
    before = _checks()
    body = checker.post(
        "/api/v1/provenance/check", _upload(png_bytes(corpus.unrelated(1)[0])), format="multipart"
    ).json()
    assert not body["made_here"] and body["jobs"] == []
    assert body["fingerprints"]["nearest_distance"]["pdq"] > body["fingerprints"]["threshold"]
    assert _checks() == before + 1

    # Bad input: 4xx naming the problem, and no check recorded.
    response = checker.post(
        "/api/v1/provenance/check", _upload(b"not an image"), format="multipart"
    )
    assert response.status_code == 415 and "image" in response.json()["detail"]
    assert _checks() == before + 1

    # A key without the scope, and a requester without the permission: 403, nothing recorded.
    wrong = api_client_for(integration, scopes=("jobs:read",))
    assert (
        wrong.post("/api/v1/provenance/check", _upload(marked.data), format="multipart").status_code
        == 403
    )
    assert (
        api_client_for(requester)
        .post("/api/v1/provenance/check", _upload(marked.data), format="multipart")
        .status_code
        == 403
    )
    assert _checks() == before + 1

    # The public variant is off by default.
    assert (
        api_client_for(None)
        .post("/api/v1/provenance/public-check", _upload(marked.data), format="multipart")
        .status_code
        == 404
    )

    # The reviewer's page.
    page = api_client_for(reviewer)
    form = page.get("/provenance/check")
    assert (
        form.status_code == 200 and b'href="/provenance/check"' in form.content
    )  # in the portal's nav
    html = page.post("/provenance/check", _upload(marked.data), format="multipart").content.decode()
    assert (
        "Made here" in html
        and str(big.pk) in html
        and requester.username in html
        and "Trusted" in html
    )
    assert _checks() == before + 2
    assert api_client_for(requester).get("/provenance/check").status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db
def test_public_check_answers_without_personal_data_when_switched_on(settings):
    settings.PROVENANCE_PUBLIC_CHECK = True
    before = _checks()
    response = api_client_for(None).post(
        "/api/v1/provenance/public-check",
        _upload(png_bytes(corpus.unrelated(2)[1])),
        format="multipart",
    )
    assert response.status_code == 200 and response.json() == {
        "made_here": False,
        "jobs": [],
        "audit": [],
    }
    assert _checks() == before + 1
