"""Retention, legal hold and data-subject erasure, end to end on PostgreSQL.

Done when: after a retention run and after an approved erasure request the storage
holds no plaintext and the keys are gone, the API and pages show the erased state,
`audit verify` and the offline verifier pass, a legal hold blocks shredding until two
reviewers lift it, and the erasure certificate verifies (and a tampered one does not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.log import append_event
from audit.models import AuditEvent
from editplatform.core import crypto
from editplatform.core.errors import DomainError
from editplatform.jobs import artifacts, shredding
from editplatform.jobs.models import Artifact, ArtifactKey, EditJob
from editplatform.retention import erasure, holds, policies
from editplatform.retention.models import ErasureRequest, RetentionPolicy
from tests.audit.helpers import make_user, png, sign_in
from tests.conftest import ROOT, api_client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fast_hasher_and_storage(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root = tmp_path / "storage"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    settings.RETENTION_DAYS = {"original": 30, "latent": 90, "edited": 365}
    return root


@pytest.fixture
def people(db):
    return {
        "alice": make_user("alice", "requester"),
        "rita": make_user("rita", "reviewer"),
        "rob": make_user("rob", "reviewer"),
    }


def make_job(requester, seed: int, *, ended_days_ago: float) -> tuple[EditJob, dict[str, bytes]]:
    data = {
        "original": png((seed, 10, 10)),
        "edited": png((10, seed, 10)),
        "latent": b"latent" + bytes([seed]) * 64,
    }
    stored = {
        kind: artifacts.store(body, "image/png" if kind != "latent" else "application/x-latent")
        for kind, body in data.items()
    }
    job = EditJob.objects.create(
        requester=requester,
        source="api",
        original=stored["original"],
        upload_sha256=stored["original"].sha256,
        upload_format="png",
        edits={"smile": 0.5},
        purpose="retention test",
        consent=True,
        params_sha256="0" * 64,
        state="succeeded",
        edited=stored["edited"],
        latent=stored["latent"],
    )
    subject = f"job:{job.pk}"  # the events the jobs code writes, for the lineage
    append_event(
        "job.submitted",
        actor=requester,
        subject=subject,
        payload={"original_sha256": job.original_id, "edits": job.edits},
    )
    append_event(
        "job.succeeded",
        subject=subject,
        payload={
            "original_sha256": job.original_id,
            "latent_sha256": job.latent_id,
            "outputs": {"edited": job.edited_id},
        },
    )
    ended = timezone.now() - timedelta(days=ended_days_ago)
    EditJob.objects.filter(pk=job.pk).update(finished_at=ended, updated_at=ended)
    job.refresh_from_db()
    return job, data


def assert_no_plaintext(root, *bodies: bytes) -> None:
    """Every stored file is sealed and contains none of ``bodies``."""
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert crypto.is_sealed(blob), path
            for body in bodies:
                assert body not in blob and body[8:40] not in blob


def assert_erased(job: EditJob, kinds, client) -> None:
    job.refresh_from_db()
    detail = client.get(reverse("jobs-api:detail", kwargs={"job_id": job.pk})).json()
    for kind in kinds:
        artifact = getattr(job, kind)
        assert artifact.erased_at is not None
        assert not ArtifactKey.objects.filter(pk=artifact.sha256).exists()
        assert detail["artifacts"][kind]["erased_under"].startswith("erased on ")
        url = reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": kind})
        gone = client.get(url)
        assert gone.status_code == 410 and "erased on" in gone.json()["detail"]
    page = client.get(reverse("jobs:detail", kwargs={"job_id": job.pk}))
    assert page.status_code == 200 and b"erased on" in page.content


def assert_log_verifies(tmp_path) -> None:
    call_command("audit", "verify")
    key = tmp_path / "log.vkey"
    with key.open("w") as handle:
        call_command("audit", "public-key", stdout=handle)
    export = tmp_path / "export.jsonl"
    call_command("audit", "export", "--output", str(export))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }
    offline = subprocess.run(
        [sys.executable, "-m", "audit.verify_export", str(export), "--public-key", str(key)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_retention_run_shreds_what_is_due_and_keeps_the_rest(
    people, fast_hasher_and_storage, tmp_path
):
    old, old_data = make_job(people["alice"], 1, ended_days_ago=40)
    recent, recent_data = make_job(people["alice"], 2, ended_days_ago=5)
    # The same photo in a recent job: shared bytes are due only when due for every job.
    shared_original = Artifact.objects.get(pk=recent.original_id)
    sharing, _ = make_job(people["alice"], 3, ended_days_ago=40)
    EditJob.objects.filter(pk=sharing.pk).update(original=shared_original)

    result = policies.run()
    assert result == {"shredded": [old.original_id], "blocked": [], "check_keys": 0}
    assert_no_plaintext(fast_hasher_and_storage, old_data["original"])
    client = api_client_for(people["alice"])
    assert_erased(old, ["original"], client)
    assert artifacts.read(old.latent) == old_data["latent"]  # 90 days: not yet
    assert artifacts.read(recent.original) == recent_data["original"]
    event = AuditEvent.objects.get(action="artifact.shredded", subject=f"job:{old.pk}")
    assert event.payload["ref"] == "retention:original" and event.actor_name == "retention"
    assert "30 days" in event.payload["reason"]

    later = timezone.now() + timedelta(days=60)  # 100 days after the old job ended
    policies.run(now=later)
    assert_erased(old, ["original", "latent"], client)
    assert_no_plaintext(fast_hasher_and_storage, old_data["original"], old_data["latent"])
    assert artifacts.read(old.edited) == old_data["edited"]
    # An admin override for a purpose wins over the setting.
    RetentionPolicy.objects.create(kind="edited", purpose_contains="retention", days=50)
    policies.run(now=later)
    assert_erased(old, ["original", "latent", "edited"], client)
    compliance = api_client_for(people["rita"])
    sign_in(compliance, people["rita"])
    timeline = compliance.get(reverse("compliance:job") + f"?subject=job:{old.pk}")
    assert timeline.status_code == 200 and b"erased on" in timeline.content
    assert_log_verifies(tmp_path)


def test_legal_hold_blocks_shredding_until_two_reviewers_lift_it(people, tmp_path):
    job, data = make_job(people["alice"], 4, ended_days_ago=40)
    rita, rob = people["rita"], people["rob"]
    with pytest.raises(DomainError, match="reviewers"):
        holds.place(job, people["alice"], "not a reviewer")
    hold = holds.place(job, rita, "litigation 2026-17")
    assert policies.run()["blocked"] == [job.original_id]
    assert artifacts.read(job.original) == data["original"]
    with pytest.raises(shredding.ShredBlocked, match="legal hold"):
        shredding.shred(job.original_id, reason="direct", ref="test")
    request = erasure.record(rob, subject="Alice", jobs=[job])
    with pytest.raises(shredding.ShredBlocked):
        erasure.approve(request, rita)
    assert ErasureRequest.objects.get(pk=request.pk).state == "recorded"  # nothing happened
    assert not Artifact.objects.filter(erased_at__isnull=False).exists()

    with pytest.raises(DomainError, match="asked to lift"):
        holds.confirm_lift(hold, rob)
    holds.request_lift(hold, rita, "case settled")
    with pytest.raises(DomainError) as same_person:
        holds.confirm_lift(hold, rita)
    assert same_person.value.code == "four_eyes"
    assert policies.run()["blocked"] == [job.original_id]  # still held
    holds.confirm_lift(hold, rob)
    hold.refresh_from_db()
    assert not hold.active and hold.lifted_by == rob and hold.lift_requested_by == rita
    assert policies.run()["shredded"] == [job.original_id]
    actions = list(
        AuditEvent.objects.filter(subject=f"job:{job.pk}").values_list("action", flat=True)
    )
    for name in ("legal_hold.placed", "legal_hold.lift_requested", "legal_hold.lifted"):
        assert name in actions
    assert_log_verifies(tmp_path)


def test_erasure_request_shreds_everything_and_certifies(people, fast_hasher_and_storage, tmp_path):
    first, first_data = make_job(people["alice"], 5, ended_days_ago=1)
    second, second_data = make_job(people["alice"], 6, ended_days_ago=0)
    other, other_data = make_job(people["rita"], 7, ended_days_ago=0)
    rita, rob = people["rita"], people["rob"]
    with pytest.raises(DomainError, match="no job with id"):
        erasure.find_jobs(["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(DomainError, match="no account"):
        erasure.find_jobs([], "nobody")
    jobs = erasure.find_jobs([str(first.pk)], "alice")
    assert {j.pk for j in jobs} == {first.pk, second.pk}
    request = erasure.record(rita, subject="Alice A.", jobs=jobs, note="email of 2026-11-29")
    with pytest.raises(DomainError) as same:
        erasure.approve(request, rita)
    assert same.value.code == "four_eyes"
    erasure.approve(request, rob)
    request.refresh_from_db()
    assert request.state == "erased" and request.approved_by == rob

    client = api_client_for(people["alice"])
    for job in (first, second):
        assert_erased(job, ["original", "edited", "latent"], client)
    bodies = [*first_data.values(), *second_data.values()]
    assert_no_plaintext(fast_hasher_and_storage, *bodies)
    assert artifacts.read(other.original) == other_data["original"]  # not named: kept

    certificate = request.certificate
    assert len(certificate["artifacts"]) == 6 and set(certificate["jobs"]) == {
        str(first.pk),
        str(second.pk),
    }
    assert all(first.original_id not in json.dumps(item) for item in certificate["artifacts"])
    vkey = _vkey()
    erasure.verify_certificate(certificate, vkey)
    forged = json.loads(json.dumps(certificate))
    forged["request"]["subject"] = "Someone else"
    with pytest.raises(erasure.CertificateError, match="signature"):
        erasure.verify_certificate(forged, vkey)
    moved = json.loads(json.dumps(certificate))
    moved["artifacts"][0]["event_seq"] += 1
    with pytest.raises(erasure.CertificateError):
        erasure.verify_certificate(moved, vkey)
    certified = AuditEvent.objects.filter(
        action="erasure.certified", subject=f"erasure:{request.pk}"
    )
    assert certified.count() == 1
    assert_log_verifies(tmp_path)


def _vkey() -> str:
    from audit.signing import get_signer

    return get_signer().verifier.vkey()


def test_reviewer_pages_record_approve_and_download_the_certificate(people):
    job, _ = make_job(people["alice"], 8, ended_days_ago=0)
    rita_client = api_client_for(people["rita"])
    sign_in(rita_client, people["rita"])
    rob_client = api_client_for(people["rob"])
    sign_in(rob_client, people["rob"])
    page = rita_client.get(reverse("retention:overview"))
    assert page.status_code == 200 and b"Retention policies" in page.content
    answer = rita_client.post(
        reverse("retention:record-request"), {"subject": "Alice", "jobs": "not-a-uuid"}
    )
    assert answer.status_code == 302 and not ErasureRequest.objects.exists()
    assert b"no job with id" in rita_client.get(reverse("retention:overview")).content
    rita_client.post(reverse("retention:record-request"), {"subject": "Alice", "jobs": str(job.pk)})
    request = ErasureRequest.objects.get()
    rita_client.post(reverse("retention:approve-request", args=[request.pk]))
    assert ErasureRequest.objects.get().state == "recorded"  # four eyes
    rob_client.post(reverse("retention:approve-request", args=[request.pk]))
    assert ErasureRequest.objects.get().state == "erased"
    download = rob_client.get(reverse("retention:certificate", args=[request.pk]))
    assert download.status_code == 200
    erasure.verify_certificate(json.loads(download.content), _vkey())
    requester = api_client_for(people["alice"])
    assert requester.get(reverse("retention:overview")).status_code == 403


def test_the_periodic_task_is_scheduled_and_runs(people):
    from editplatform.celery import app
    from editplatform.retention.tasks import RUN_RETENTION, run_retention

    assert app.conf.beat_schedule["retention-run"]["task"] == RUN_RETENTION
    job, _ = make_job(people["alice"], 9, ended_days_ago=31)
    assert run_retention.apply().get() == {"shredded": 1, "blocked": 0}
    job.refresh_from_db()
    assert job.original.erased_at is not None
