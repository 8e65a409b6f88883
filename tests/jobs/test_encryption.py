"""Envelope encryption of stored artifacts, shredding and the in-place migration.

On PostgreSQL with the real filesystem storage: storage holds ciphertext only, reads
and streamed downloads decrypt, a tampered ciphertext is a clear 409 (never garbage,
never a 500), a shredded artifact answers 410 everywhere and leaves no key or bytes,
and `encrypt_artifacts` migrates legacy plaintext resumably while reads keep working.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from editplatform.core import crypto
from editplatform.jobs import artifacts, shredding
from editplatform.jobs.models import Artifact, ArtifactKey, EditJob, sealed_name, storage_name
from tests.audit.helpers import png
from tests.jobs.conftest import api_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def make_job(requester, color=(200, 10, 10)) -> EditJob:
    original = artifacts.store(png(color), "image/png", width=16, height=16)
    edited = artifacts.store(png(color[::-1]), "image/png", width=16, height=16)
    latent = artifacts.store(b"latent-" + bytes(color) * 20, "application/octet-stream")
    return EditJob.objects.create(
        requester=requester,
        source="api",
        original=original,
        upload_sha256=original.sha256,
        upload_format="png",
        edits={"smile": 0.5},
        purpose="encryption test",
        consent=True,
        params_sha256="0" * 64,
        state="succeeded",
        edited=edited,
        latent=latent,
    )


def test_storage_holds_only_ciphertext_and_reads_decrypt(isolated_storage):
    data = png((1, 2, 3))
    artifact = artifacts.store(data, "image/png", width=16, height=16)
    files = [p for p in isolated_storage.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [f"{artifact.sha256}.sealed"]
    stored = files[0].read_bytes()
    assert crypto.is_sealed(stored) and data not in stored and data[:16] not in stored
    key = ArtifactKey.objects.get(pk=artifact.sha256)
    assert key.sealed_at is not None and len(key.commitment) == 64
    assert key.commitment != artifact.sha256
    assert artifacts.read(artifact) == data
    # Idempotent: storing the same bytes again keeps the key and the ciphertext.
    again = artifacts.store(data, "image/png", width=16, height=16)
    assert again.pk == artifact.pk and files[0].read_bytes() == stored
    assert ArtifactKey.objects.get(pk=artifact.sha256).key_id == key.key_id


def test_ciphertext_of_a_rolled_back_key_is_replaced(isolated_storage):
    data = png((9, 9, 9))
    with pytest.raises(RuntimeError), transaction.atomic():
        artifacts.write_blob(data)  # the key row rolls back, the ciphertext stays
        raise RuntimeError("rollback")
    digest = artifacts.sha256_hex(data)
    assert not ArtifactKey.objects.filter(pk=digest).exists()
    assert (isolated_storage / sealed_name(digest)).exists()
    artifact = artifacts.store(data, "image/png")
    assert artifacts.read(artifact) == data  # sealed anew under the surviving key


def test_download_streams_plaintext_and_tampering_is_a_clear_409(requester, isolated_storage):
    job = make_job(requester)
    client = api_client(requester)
    url = reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": "original"})
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == artifacts.read(job.original)
    path = isolated_storage / sealed_name(job.original_id)
    blob = bytearray(path.read_bytes())
    blob[crypto.HEADER_BYTES + 4] ^= 0x01
    path.write_bytes(bytes(blob))
    before = AuditEvent.objects.filter(action="artifact.downloaded").count()
    response = client.get(url)
    assert response.status_code == 409
    assert response.json()["code"] == "artifact_integrity"
    assert "integrity" in response.json()["detail"]
    # nothing was served, so nothing is logged as downloaded
    assert AuditEvent.objects.filter(action="artifact.downloaded").count() == before
    portal = api_client(requester).get(
        reverse("jobs:artifact", kwargs={"job_id": job.pk, "kind": "original"})
    )
    assert portal.status_code == 409 and b"integrity" in portal.content


def test_shred_destroys_key_and_bytes_and_every_view_says_erased(
    requester, reviewer, isolated_storage
):
    job = make_job(requester)
    sha = job.original_id
    assert shredding.shred(sha, reason="test erasure", ref="test:1", actor=reviewer)
    assert not shredding.shred(sha, reason="again", ref="test:2", actor=reviewer)  # idempotent
    artifact = Artifact.objects.get(pk=sha)
    assert artifact.erased_at is not None and artifact.erasure_ref == "test:1"
    assert not ArtifactKey.objects.filter(pk=sha).exists()
    assert not (isolated_storage / sealed_name(sha)).exists()
    assert not (isolated_storage / storage_name(sha)).exists()
    event = AuditEvent.objects.get(action="artifact.shredded", subject=f"job:{job.pk}")
    # Logged by its keyed commitment, never the plain hash (editplatform.jobs.keyed_ids).
    assert f"artifact:{event.payload['commitment']}" in event.subjects
    assert f"artifact:{sha}" not in event.subjects
    assert event.payload["kind"] == "original" and len(event.payload["commitment"]) == 64
    # API: the job lists the erasure, the download answers 410 with the reason
    client = api_client(requester)
    detail = client.get(reverse("jobs-api:detail", kwargs={"job_id": job.pk})).json()
    assert detail["artifacts"]["original"]["erased_under"].startswith("erased on ")
    assert "test erasure" in detail["artifacts"]["original"]["erased_under"]
    assert detail["artifacts"]["edited"]["erased_at"] is None
    url = reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": "original"})
    gone = client.get(url)
    assert gone.status_code == 410 and gone.json()["code"] == "artifact_erased"
    assert "test erasure" in gone.json()["detail"]
    # portal page and download
    page = client.get(reverse("jobs:detail", kwargs={"job_id": job.pk}))
    assert page.status_code == 200
    assert b'id="erased-original"' in page.content and b"under test erasure" in page.content
    portal = client.get(reverse("jobs:artifact", kwargs={"job_id": job.pk, "kind": "original"}))
    assert portal.status_code == 410 and b"erased on" in portal.content
    with pytest.raises(artifacts.ArtifactErased):
        artifacts.read(artifact)
    # the other artifacts are untouched
    assert artifacts.read(job.edited) == png((10, 10, 200))


def test_guard_blocks_shredding(requester, isolated_storage):
    job = make_job(requester)

    def hold(artifact, jobs):
        return "on hold" if any(j.pk == job.pk for j in jobs) else ""

    shredding.register_guard(hold)
    try:
        with pytest.raises(shredding.ShredBlocked, match="on hold"):
            shredding.shred_job(job, reason="r", ref="x")
    finally:
        shredding._guards.remove(hold)
    assert not Artifact.objects.filter(erased_at__isnull=False).exists()
    assert ArtifactKey.objects.count() == 3


def _legacy(isolated_storage, data: bytes) -> Artifact:
    """An artifact as a deployment from before encryption stored it: plaintext, no key."""
    digest = artifacts.sha256_hex(data)
    path = isolated_storage / storage_name(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Artifact.objects.create(sha256=digest, media_type="image/png", size=len(data))


def test_migration_encrypts_in_place_resumably_and_reads_keep_working(isolated_storage):
    legacy = [_legacy(isolated_storage, png((i, 40, 90))) for i in range(4)]
    assert all(artifacts.read(a) == png((i, 40, 90)) for i, a in enumerate(legacy))
    # An interrupted run: key created and ciphertext written, never switched over.
    data = png((0, 40, 90))
    key = artifacts.data_key_row(legacy[0].sha256, data)
    artifacts.write_sealed(legacy[0].sha256, data, key)
    assert artifacts.read(legacy[0]) == data  # still read from the plaintext
    call_command("encrypt_artifacts", "--limit", "2")
    # Mid-migration: some sealed, some plaintext, all readable.
    sealed = ArtifactKey.objects.filter(sealed_at__isnull=False).count()
    assert sealed == 2
    assert all(artifacts.read(a) == png((i, 40, 90)) for i, a in enumerate(legacy))
    call_command("encrypt_artifacts")
    call_command("encrypt_artifacts")  # nothing left: a no-op
    for i, artifact in enumerate(legacy):
        assert not (isolated_storage / storage_name(artifact.sha256)).exists()
        blob = (isolated_storage / sealed_name(artifact.sha256)).read_bytes()
        assert crypto.is_sealed(blob) and png((i, 40, 90)) not in blob
        assert artifacts.read(artifact) == png((i, 40, 90))
    assert ArtifactKey.objects.get(pk=legacy[0].sha256).key_id == key.key_id


@pytest.mark.embedded
def test_embedded_defaults_seal_read_and_shred(requester, isolated_storage):
    """`make run`'s shape (SQLite, local files, the generated KEK in var/) works alike."""
    job = make_job(requester, color=(5, 6, 7))
    assert all(p.name.endswith(".sealed") for p in isolated_storage.rglob("*") if p.is_file())
    assert artifacts.read(job.original) == png((5, 6, 7))
    assert shredding.shred_job(job, reason="embedded", ref="test:embedded")
    assert not ArtifactKey.objects.exists()
    assert not [p for p in isolated_storage.rglob("*") if p.is_file()]
    gone = api_client(requester).get(
        reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": "latent"})
    )
    assert gone.status_code == 410


def test_the_same_bytes_stored_after_erasure_get_a_new_key(requester, reviewer, isolated_storage):
    job = make_job(requester, color=(33, 44, 55))
    old_key = ArtifactKey.objects.get(pk=job.original_id).key_id
    shredding.shred(job.original_id, reason="erasure", ref="test:3", actor=reviewer)
    again = artifacts.store(png((33, 44, 55)), "image/png", width=16, height=16)
    assert again.pk == job.original_id and again.erased_at is None
    assert Artifact.objects.get(pk=again.pk).erased_at is None
    assert ArtifactKey.objects.get(pk=again.pk).key_id != old_key
    assert artifacts.read(again) == png((33, 44, 55))
    # the erasure stays on record
    shredded = AuditEvent.objects.filter(action="artifact.shredded", subject=f"job:{job.pk}")
    assert shredded.count() == 1


def test_an_unusable_kek_is_a_clear_503(requester, isolated_storage, settings, tmp_path):
    job = make_job(requester)
    bad = tmp_path / "kek"
    bad.write_bytes(b"too short")
    settings.ARTIFACT_KEK_FILE = str(bad)
    with pytest.raises(artifacts.ArtifactKeysUnavailable, match="32 bytes"):
        artifacts.store(png((1, 1, 1)), "image/png")
    assert not Artifact.objects.filter(pk=artifacts.sha256_hex(png((1, 1, 1)))).exists()
    url = reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": "original"})
    response = api_client(requester).get(url)
    assert response.status_code == 503
    assert response.json()["code"] == "artifact_keys_unavailable"


def test_production_without_a_kek_refuses_to_start(tmp_path):
    from tests.conftest import manage_check

    env = dict(STYLELEDGER_ENV="production", SECRET_KEY="x" * 50, STYLELEDGER_VAR_DIR=str(tmp_path))
    run = manage_check(timeout=180, ARTIFACT_KEK_FILE="", **env)
    assert run.returncode != 0 and "core.E101" in run.stderr and "ARTIFACT_KEK_FILE" in run.stderr
    run = manage_check(timeout=180, ARTIFACT_KEK_FILE=str(tmp_path / "kek"), **env)
    assert "core.E101" not in run.stderr
