"""The benchmark-only plaintext baseline (`bench_jobs --plaintext-artifacts`).

Under its settings module artifacts are stored the way they were before encryption (no
key row, plaintext file) and read back as legacy artifacts; the module refuses to load
in production, so no deployment can store plaintext by configuration.
"""

from __future__ import annotations

import pytest

from editplatform.jobs import artifacts
from editplatform.jobs.models import ArtifactKey, EditJob, sealed_name, storage_name
from tests.audit.helpers import png
from tests.conftest import manage_check

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_baseline_stores_plaintext_and_reads_it_back(settings, isolated_storage):
    settings.BENCHMARK_PLAINTEXT_ARTIFACTS = True
    data = png((5, 6, 7))
    artifact = artifacts.store(data, "image/png", width=16, height=16)
    assert (isolated_storage / storage_name(artifact.sha256)).read_bytes() == data
    assert not (isolated_storage / sealed_name(artifact.sha256)).exists()
    assert not ArtifactKey.objects.filter(pk=artifact.sha256).exists()
    assert artifacts.read(artifact) == data
    assert artifacts.write_blob_keyed(data) == (artifact.sha256, None)

    settings.BENCHMARK_PLAINTEXT_ARTIFACTS = False  # the shipped path seals
    sealed = artifacts.store(png((7, 6, 5)), "image/png", width=16, height=16)
    assert (isolated_storage / sealed_name(sealed.sha256)).exists()
    assert ArtifactKey.objects.filter(pk=sealed.sha256).exists()


def test_the_baseline_settings_refuse_production(tmp_path):
    run = manage_check(
        timeout=180,
        DJANGO_SETTINGS_MODULE="editplatform.jobs.management.bench_plaintext_settings",
        STYLELEDGER_ENV="production",
        SECRET_KEY="x" * 50,
        STYLELEDGER_VAR_DIR=str(tmp_path),
        ARTIFACT_KEK_FILE=str(tmp_path / "kek"),
    )
    assert run.returncode != 0 and "never production" in run.stderr


def test_a_submit_works_on_the_baseline(settings, requester, isolated_storage, model_bundle):
    """The benchmark submits through the API: the submit path must take the baseline's
    key-less store (a merge once broke it with a 500 that only the bench saw)."""
    from tests.jobs import images
    from tests.jobs.conftest import api_client, submit_via_api

    settings.BENCHMARK_PLAINTEXT_ARTIFACTS = True
    response = submit_via_api(api_client(requester), images.png())
    assert response.status_code == 201, response.content
    job = EditJob.objects.get(pk=response.json()["id"])
    assert (isolated_storage / storage_name(job.original.sha256)).exists()
    assert not ArtifactKey.objects.filter(pk=job.original.sha256).exists()
