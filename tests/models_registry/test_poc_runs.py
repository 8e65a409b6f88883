"""Proof-of-concept runs without a worker process: the task's body run in this process,
what a refused upload leaves behind (nothing), and what everyone but an admin gets (403,
also for another admin's real run ids), the report's sealed storage and its headers."""

from __future__ import annotations

import html
import json
import uuid
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEvent
from editplatform.core.errors import DomainError
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact, ArtifactKey, sealed_name
from editplatform.models_registry import poc_runs, services
from editplatform.models_registry.models import PocRun
from tests.conftest import mark_two_factor_verified
from tests.jobs import images
from tests.jobs.helpers import logged
from tests.models_registry import poc_helpers as z


def portal(user) -> Client:
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


@pytest.fixture
def demo_version(registry_people, model_bundle):
    return services.register_bundle(
        source=Path(model_bundle), user=registry_people["admin1"], name="demo"
    )


@pytest.fixture
def finished_run(registry_people, demo_version):
    run = poc_runs.start(
        user=registry_people["admin1"],
        version=demo_version,
        gpu_hour_price="2.5",
        upload=z.photo_zip(3),
    )
    assert poc_runs.execute(run.pk) == PocRun.State.SUCCEEDED
    run.refresh_from_db()
    return run


def _stored_counts():
    return (
        PocRun.objects.count(),
        Artifact.objects.count(),
        ArtifactKey.objects.count(),
        AuditEvent.objects.filter(action__startswith="model.poc").count(),
        sorted(str(p) for p in Path(default_storage.location).rglob("*") if p.is_file()),
    )


@pytest.mark.django_db
def test_the_task_body_measures_and_stores_sealed_reports(finished_run, demo_version):
    run = finished_run
    assert (run.state, run.progress, run.stage, run.error) == ("succeeded", 100, "done", "")
    assert run.summary["photos_used"] == 3 and run.summary["photos_skipped"] == 0
    report = json.loads(artifacts.read(run.report_json))
    assert report["bundle"]["version"] == demo_version.version
    assert report["photos"]["n_used"] == 3
    assert report["cost"]["price_per_hour"] == 2.5
    assert report["reconstruction"]["psnr"] == pytest.approx(run.summary["psnr_mean"])
    assert "--gpu-hour-price 2.5000" in report["command"]
    html = artifacts.read(run.report_html).decode()
    assert "Proof of concept on your photos" in html and "data:image/png;base64," in html
    for artifact in (run.photos, run.report_json, run.report_html):
        key = ArtifactKey.objects.get(sha256=artifact.sha256)
        assert key.sealed_at is not None
        with default_storage.open(sealed_name(artifact.sha256), "rb") as handle:
            blob = handle.read()
        assert blob.startswith(b"SLE1") and b"Proof of concept" not in blob
    events = [
        (e.action, e.payload)
        for e in AuditEvent.objects.filter(
            subject=demo_version.subject, action__startswith="model.poc"
        ).order_by("seq")
    ]
    assert [a for a, _ in events] == ["model.poc_started", "model.poc_finished"]
    assert events[0][1]["photos_sha256"] == logged(run.photos_id)
    assert events[1][1]["outcome"] == "succeeded"
    assert events[1][1]["report_html_sha256"] == logged(run.report_html_id)
    # a redelivered message finds the run finished and does nothing
    assert poc_runs.execute(run.pk) == "finished already"


@pytest.mark.django_db
def test_a_failing_run_ends_failed_with_its_reason(registry_people, demo_version):
    run = poc_runs.start(
        user=registry_people["admin1"],
        version=demo_version,
        gpu_hour_price=1,
        upload=z.photo_zip(1),
    )
    Path(demo_version.path, "encoder.safetensors").write_bytes(b"altered weights")
    assert poc_runs.execute(run.pk) == PocRun.State.FAILED
    run.refresh_from_db()
    assert run.state == "failed" and "encoder.safetensors" in run.error
    (finished,) = [
        e
        for e in AuditEvent.objects.filter(action="model.poc_finished")
        if e.payload["run"] == str(run.pk)
    ]
    assert finished.payload["outcome"] == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "upload, words",
    [
        (z.crafted_zip(("../escape.png", b"x")), "leaves the archive"),
        (z.symlink_zip(), "link or special file"),
        (z.bomb_zip(), "zip bomb"),
        (
            z.crafted_zip(("a.png", images.png()), ("run.sh", b"#!/bin/sh")),
            "'run.sh' is not a usable photo",
        ),
        (b"not a zip", "not a zip archive"),
    ],
)
def test_a_refused_upload_is_a_400_and_stores_nothing(registry_people, demo_version, upload, words):
    client = portal(registry_people["admin1"])
    before = _stored_counts()
    response = client.post(
        "/models/poc/",
        {
            "version": demo_version.version,
            "gpu_hour_price": "2.50",
            "photos": SimpleUploadedFile("photos.zip", upload, "application/zip"),
        },
    )
    assert response.status_code == 400
    assert words in html.unescape(response.content.decode())
    assert _stored_counts() == before


@pytest.mark.django_db
def test_price_and_version_are_checked(registry_people, demo_version):
    client = portal(registry_people["admin1"])
    for fields, words in [
        ({"gpu_hour_price": "-1"}, "greater than or equal to 0"),
        ({"version": "f" * 64}, "Select a valid choice"),
    ]:
        data = {
            "version": demo_version.version,
            "gpu_hour_price": "1",
            "photos": SimpleUploadedFile("p.zip", z.photo_zip(1)),
            **fields,
        }
        response = client.post("/models/poc/", data)
        assert response.status_code == 400 and words in response.content.decode()
    with pytest.raises(DomainError) as caught:
        poc_runs.check_price("NaN")
    assert caught.value.status == 400
    assert PocRun.objects.count() == 0


@pytest.mark.django_db
def test_only_admins_reach_any_run(registry_people, finished_run, demo_version):
    """Requesters, reviewers and model approvers get 403 on every route, with a real run id
    of someone else (no existence oracle: the same answer as for a made-up id)."""
    run_id = finished_run.pk
    routes = [
        "/models/poc/",
        f"/models/poc/{run_id}/",
        f"/models/poc/{run_id}/status",
        f"/models/poc/{run_id}/report",
        f"/models/poc/{run_id}/report?download=1",
        f"/models/poc/{run_id}/report.json",
        f"/models/poc/{uuid.uuid4()}/report",
    ]
    for name in ("req", "rev", "mapprover"):
        client = portal(registry_people[name])
        for url in routes:
            assert client.get(url).status_code == 403, (name, url)
        upload = SimpleUploadedFile("p.zip", z.photo_zip(1))
        response = client.post(
            "/models/poc/",
            {"version": demo_version.version, "gpu_hour_price": "1", "photos": upload},
        )
        assert response.status_code == 403
        with pytest.raises(DomainError) as caught:
            poc_runs.start(
                user=registry_people[name],
                version=demo_version,
                gpu_hour_price=1,
                upload=z.photo_zip(1),
            )
        assert caught.value.status == 403
    assert PocRun.objects.count() == 1
    assert Client().get(f"/models/poc/{run_id}/report").status_code == 302  # sign-in
    reads = AuditEvent.objects.filter(action="model.poc_report_read").count()
    assert reads == 0


@pytest.mark.django_db
def test_admins_read_the_report_sandboxed_and_each_read_is_logged(registry_people, finished_run):
    client = portal(registry_people["boss"])  # another admin than the one who started it
    run_id = finished_run.pk
    response = client.get(f"/models/poc/{run_id}/report")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "sandbox" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]
    assert "Content-Disposition" not in response
    assert b"Proof of concept on your photos" in response.content
    download = client.get(f"/models/poc/{run_id}/report?download=1")
    assert download["Content-Disposition"].startswith("attachment;")
    as_json = client.get(f"/models/poc/{run_id}/report.json")
    assert json.loads(as_json.content)["photos"]["n_used"] == 3
    status = client.get(f"/models/poc/{run_id}/status").json()
    assert status == {
        "state": "succeeded",
        "stage": "done",
        "progress": 100,
        "finished": True,
        "error": "",
    }
    assert client.get(f"/models/poc/{uuid.uuid4()}/report").status_code == 404
    reads = [
        e
        for e in AuditEvent.objects.filter(action="model.poc_report_read").order_by("seq")
        if e.payload["run"] == str(run_id)
    ]
    assert [e.payload["kind"] for e in reads] == ["html", "html", "json"]
    assert {e.actor.username for e in reads} == {"boss"}


@pytest.mark.django_db
def test_a_report_that_is_not_ready_is_404(registry_people, demo_version):
    run = poc_runs.start(
        user=registry_people["admin1"],
        version=demo_version,
        gpu_hour_price=1,
        upload=z.photo_zip(1),
    )
    client = portal(registry_people["admin1"])
    assert client.get(f"/models/poc/{run.pk}/report").status_code == 404
    page = client.get(f"/models/poc/{run.pk}/")
    assert page.status_code == 200 and b'id="poc-open-report"' not in page.content


@pytest.mark.django_db
def test_the_model_card_links_admins_to_a_run_with_the_version_chosen(
    registry_people, demo_version
):
    card = f"/models/{demo_version.version}/"
    admin = portal(registry_people["admin1"])
    assert b'id="model-poc"' in admin.get(card).content
    form = admin.get(f"/models/poc/?version={demo_version.version}").content.decode()
    assert f'<option value="{demo_version.version}" selected>' in form
    assert b'id="model-poc"' not in portal(registry_people["req"]).get(card).content
