"""Released outputs are marked by the release hook: a plain job run on a real worker ends
with a watermarked, C2PA-signed edited output naming the job; downloads serve it; the
audit log records it; a failed marking leaves the job released and the sweep marks it.
A photo-pipeline job's full-resolution result is marked too: its download is the marked
copy, and the lookup finds the job from a re-saved JPEG of it."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core import checks
from django.urls import reverse
from PIL import Image

from audit.models import AuditEvent
from editplatform.jobs import artifacts
from editplatform.jobs.models import EditJob
from editplatform.provenance import manifest, release, services, signing
from editplatform.provenance.apps import check_signing_files
from editplatform.provenance.models import WatermarkKey
from tests.jobs import images
from tests.jobs.conftest import (
    api_client,
    gpu_queue_to_ourselves,
    submit_via_api,
    wait_for,
    wait_for_state,
)
from tests.jobs.helpers import logged
from tests.jobs.test_photo_pipeline import (  # noqa: F401  (fixtures)
    catalogue_canvas,
    domain_bundle,
    photo_worker,
)
from tests.provenance.conftest import clone_job, png_bytes, run_real_job


@pytest.fixture
def dev_ca(settings):
    """The worker's development chain (its var dir), so this process verifies what it signed."""
    settings.C2PA_SIGNING_KEY_FILE = settings.C2PA_CERT_CHAIN_FILE = (
        settings.C2PA_TRUST_ANCHORS_FILE
    ) = None
    return settings.PROVENANCE_DEV_CA_DIR


def _marked(job) -> EditJob:
    return wait_for(
        lambda: (
            EditJob.objects.filter(pk=job.pk, marked__isnull=False)
            .select_related("marked", "edited")
            .first()
        ),
        60,
        what=f"job {job.pk} to be marked",
    )


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_plain_job_on_a_worker_is_released_marked(worker, requester, dev_ca):
    job = _marked(run_real_job(requester))
    data = artifacts.read(job.marked)
    assert hashlib.sha256(data).hexdigest() == job.marked_id != job.edited_id

    report = manifest.read_image(data, anchors_pem=signing.trust_anchors())
    assert report.state == "Trusted", report.failures
    released = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded")
    assert (
        report.audit["job_id"] == str(job.pk)
        and report.audit["original_sha256"] == logged(job.original_id)  # keyed (issue 17)
    )
    assert report.audit["event"]["seq"] == released.seq
    assert WatermarkKey.objects.get(job=job, marked_sha256=job.marked_id).manifest == report.audit

    event = AuditEvent.objects.get(subject=f"job:{job.pk}", action="provenance.marked")
    assert (
        event.payload["marked_sha256"] == logged(job.marked_id)  # keyed ids (issue 17)
        and event.payload["edited_sha256"] == logged(job.edited_id)
    )
    assert event.seq > released.seq

    # The requester's API lists and downloads the marked bytes as "edited".
    client = api_client(requester)
    listed = client.get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]["edited"]
    assert listed["sha256"] == job.marked_id and listed["size"] == len(data)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/edited")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_failed_marking_keeps_the_job_and_the_sweep_marks_it(
    worker, requester, dev_ca, settings, tmp_path
):
    job = _marked(run_real_job(requester))
    clone, _ = clone_job(job, marked=None)

    settings.C2PA_SIGNING_KEY_FILE = str(tmp_path / "missing.key")  # half-configured: refused
    release.mark_released(clone)
    clone.refresh_from_db()
    assert clone.state == "succeeded" and clone.marked_id is None
    failed = AuditEvent.objects.get(subject=f"job:{clone.pk}", action="provenance.mark_failed")
    assert "C2PA_CERT_CHAIN_FILE" in failed.payload["error"]
    assert list(release.pending()) == [clone]
    # A download meanwhile serves the unmarked edited output (the job is not lost).
    assert (
        api_client(requester)
        .get(f"/api/v1/jobs/{clone.pk}")
        .json()["artifacts"]["edited"]["sha256"]
        == clone.edited_id
    )

    settings.C2PA_SIGNING_KEY_FILE = None
    assert release.sweep() == 1
    clone.refresh_from_db()
    assert clone.marked_id and not list(release.pending())
    assert AuditEvent.objects.get(subject=f"job:{clone.pk}", action="provenance.marked").payload[
        "marked_sha256"
    ] == logged(clone.marked_id)
    assert release.sweep() == 0  # nothing left; already marked jobs are not marked again


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mark_whose_row_cannot_be_stored_leaves_no_orphan_blob(
    worker, requester, dev_ca, monkeypatch
):
    """The database failing between the marked bytes' write and their row (a restart, as
    the soak injects) must not leave the signed bytes behind: the retry signs other bytes."""
    from django.db import OperationalError
    from django.db.models import QuerySet

    from editplatform.jobs.management.commands.check_artifacts import orphan_blobs
    from editplatform.jobs.models import Artifact

    job = _marked(run_real_job(requester))
    clone, _ = clone_job(job, marked=None)
    # blobs of earlier tests in this run (their rows flushed) are orphans already
    before = orphan_blobs()
    real_get_or_create = QuerySet.get_or_create

    def failing(self, *args, **kwargs):
        if self.model is Artifact:
            raise OperationalError("server closed the connection unexpectedly")
        return real_get_or_create(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "get_or_create", failing)
    release.mark_released(clone)
    monkeypatch.setattr(QuerySet, "get_or_create", real_get_or_create)

    clone.refresh_from_db()
    assert clone.state == "succeeded" and clone.marked_id is None
    assert AuditEvent.objects.filter(
        subject=f"job:{clone.pk}", action="provenance.mark_failed"
    ).exists()
    assert orphan_blobs() == before
    assert release.sweep() == 1
    clone.refresh_from_db()
    assert clone.marked_id and orphan_blobs() == before


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_held_job_is_marked_when_an_approval_releases_it(
    worker, requester, approver, bundle, dev_ca
):
    from editplatform.approvals import services as approvals
    from editplatform.jobs import policy

    sensitive = next(spec.name for spec in bundle.catalog if spec.sensitive)
    response = submit_via_api(api_client(requester), images.png(), edits=f'{{"{sensitive}": 1}}')
    assert response.status_code == 201, response.content
    job = wait_for_state(response.json()["id"], "awaiting_approval")
    assert job.marked_id is None  # held outputs are not released, so not marked
    approvals.approve(
        job, approver, params_sha256=job.params_sha256, outputs_sha256=policy.outputs_sha256(job)
    )

    job = _marked(job)
    report = manifest.read_image(artifacts.read(job.marked), anchors_pem=signing.trust_anchors())
    assert report.state == "Trusted", report.failures
    released = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.released")
    assert report.audit["job_id"] == str(job.pk) and report.audit["event"]["seq"] == released.seq
    assert AuditEvent.objects.get(subject=f"job:{job.pk}", action="provenance.marked").payload[
        "marked_sha256"
    ] == logged(job.marked_id)
    assert (
        api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]["edited"]["sha256"]
        == job.marked_id
    )


def _marked_photo(job) -> EditJob:
    return wait_for(
        lambda: (
            EditJob.objects.filter(pk=job.pk, marked__isnull=False, marked_result__isnull=False)
            .select_related("marked", "marked_result", "result")
            .first()
        ),
        90,
        what=f"job {job.pk}'s edited and result to be marked",
    )


def _jpeg(data: bytes, quality: int = 85) -> bytes:
    """A re-save as a user would post it: decoded, re-encoded, every metadata block dropped."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_photo_jobs_full_resolution_result_is_released_marked(
    photo_worker,  # noqa: F811 - the fixture imported above
    requester,
    dev_ca,
    monkeypatch,
):
    from django.db import OperationalError
    from django.db.models import QuerySet

    from editplatform.jobs.management.commands.check_artifacts import orphan_blobs
    from editplatform.jobs.models import Artifact

    with gpu_queue_to_ourselves():
        photo_worker("approve")
        response = submit_via_api(api_client(requester), png_bytes(catalogue_canvas(index=0)))
        assert response.status_code == 201, response.content
        job = wait_for_state(
            response.json()["id"], {"succeeded", "failed", "awaiting_approval"}, timeout=180
        )
        assert job.state == "succeeded", (job.state, job.error_code, job.error)
        job = _marked_photo(job)
    assert job.marked_result_id not in (job.result_id, job.marked_id)

    # What the requester downloads as "result" (API and portal) is the marked copy.
    client = api_client(requester)
    listed = client.get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]["result"]
    assert listed["sha256"] == job.marked_result_id
    assert (listed["width"], listed["height"]) == (512, 512)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/result")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == job.marked_result_id
    portal = client.get(reverse("jobs:artifact", kwargs={"job_id": job.pk, "kind": "result"}))
    assert portal.status_code == 200 and b"".join(portal.streaming_content) == data
    assert Image.open(io.BytesIO(data)).size == (512, 512)

    # Trusted, naming the job and its release event.
    report = manifest.read_image(data, anchors_pem=signing.trust_anchors())
    assert report.state == "Trusted", report.failures
    released = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded")
    assert report.audit["job_id"] == str(job.pk) and report.audit["event"]["seq"] == released.seq
    key = WatermarkKey.objects.get(job=job, marked_sha256=job.marked_result_id)

    # Both marks are in one audit event, each with its source and marked hashes.
    marks = AuditEvent.objects.get(subject=f"job:{job.pk}", action="provenance.marked").payload
    assert (marks["edited_sha256"], marks["marked_sha256"]) == (
        logged(job.edited_id),
        logged(job.marked_id),
    )
    assert (marks["result_sha256"], marks["marked_result_sha256"]) == (
        logged(job.result_id),
        logged(job.marked_result_id),
    )
    assert marks["result_watermark_key"] == f"{key.key:08x}" != marks["watermark_key"]

    # A re-saved JPEG of the download (no manifest left) still leads to the job.
    resaved = _jpeg(data)
    found = services.find_matching_jobs(resaved)
    assert found and found[0].job_id == str(job.pk), found
    assert f"watermark key {key.key:08x}" in found[0].evidence
    checked = services.check_image(resaved, channel="public")
    assert checked.made_here and checked.public_dict()["jobs"][0] == str(job.pk)
    assert checked.manifest["present"] is False

    # The result's mark fails after its bytes were written: nothing left behind, the job
    # stays released with its edited mark, and the sweep marks the result.
    clone, _ = clone_job(job, marked_result=None)
    before = orphan_blobs()  # earlier tests' blobs (their rows flushed)
    real_get_or_create = QuerySet.get_or_create

    def failing(self, *args, **kwargs):
        if self.model is Artifact:
            raise OperationalError("server closed the connection unexpectedly")
        return real_get_or_create(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "get_or_create", failing)
    release.mark_released(clone)
    monkeypatch.setattr(QuerySet, "get_or_create", real_get_or_create)
    clone.refresh_from_db()
    assert clone.state == "succeeded" and clone.marked_result_id is None
    assert clone.marked_id == job.marked_id  # the edited mark it had stands
    assert orphan_blobs() == before
    assert list(release.pending()) == [clone]
    assert (
        client.get(f"/api/v1/jobs/{clone.pk}").json()["artifacts"]["result"]["sha256"]
        == clone.result_id
    )  # meanwhile the unmarked result is served: the job is not lost
    assert release.sweep() == 1
    clone.refresh_from_db()
    assert clone.marked_result_id and clone.marked_result_id != job.marked_result_id
    assert clone.marked_id == job.marked_id and not list(release.pending())
    (swept,) = AuditEvent.objects.filter(subject=f"job:{clone.pk}", action="provenance.marked")
    assert swept.payload["marked_result_sha256"] == logged(clone.marked_result_id)
    assert "marked_sha256" not in swept.payload  # only the missing mark was made
    assert release.sweep() == 0

    # Both marks missing and the second one's row fails: the first, already stored, is
    # dropped with its bytes too (nothing half-marked, nothing left behind).
    both, _ = clone_job(job, marked=None, marked_result=None)
    rows = Artifact.objects.count()
    calls = []

    def second_fails(self, *args, **kwargs):
        if self.model is Artifact:
            calls.append(1)
            if len(calls) == 2:
                raise OperationalError("server closed the connection unexpectedly")
        return real_get_or_create(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "get_or_create", second_fails)
    release.mark_released(both)
    monkeypatch.setattr(QuerySet, "get_or_create", real_get_or_create)
    both.refresh_from_db()
    assert len(calls) == 2 and both.marked_id is None and both.marked_result_id is None
    assert Artifact.objects.count() == rows and orphan_blobs() == before
    assert release.sweep() == 1
    both.refresh_from_db()
    assert both.marked_id and both.marked_result_id


def test_production_refuses_to_start_without_the_c2pa_files(settings, tmp_path):
    settings.PRODUCTION = True
    settings.C2PA_SIGNING_KEY_FILE = settings.C2PA_CERT_CHAIN_FILE = (
        settings.C2PA_TRUST_ANCHORS_FILE
    ) = None
    errors = check_signing_files()
    assert [e.id for e in errors] == ["provenance.E001"] and "C2PA_SIGNING_KEY_FILE" in errors[
        0
    ].msg
    assert any(e.id == "provenance.E001" for e in checks.run_checks(tags=["provenance"]))

    for name in ("key", "chain", "roots"):
        (tmp_path / name).write_text("pem")
    settings.C2PA_SIGNING_KEY_FILE = str(tmp_path / "key")
    settings.C2PA_CERT_CHAIN_FILE = str(tmp_path / "chain")
    settings.C2PA_TRUST_ANCHORS_FILE = str(tmp_path / "absent")
    assert [e.id for e in check_signing_files()] == ["provenance.E002"]
    settings.C2PA_TRUST_ANCHORS_FILE = str(tmp_path / "roots")
    assert check_signing_files() == []
    settings.PRODUCTION = False
    settings.C2PA_SIGNING_KEY_FILE = None
    assert check_signing_files() == []
