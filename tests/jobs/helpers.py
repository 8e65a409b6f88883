"""Assertions shared by the worker and browser tests."""

from __future__ import annotations

import io

from PIL import Image

from editplatform.jobs import artifacts, pipeline
from editplatform.jobs.models import EditJob
from tests.jobs.conftest import audit_count


def logged(sha: str) -> str:
    """What events written since the keyed-ids cut-over record for artifact ``sha``: its
    keyed commitment while its key lives (editplatform.jobs.keyed_ids, issue 17)."""
    from editplatform.jobs.models import ArtifactKey

    key = ArtifactKey.objects.filter(pk=sha).first() if sha else None
    return key.commitment if key else sha


def assert_job_produced_everything(job: EditJob, bundle) -> None:
    """Succeeded once, with images, the latent, the model version and audit events."""
    job.refresh_from_db()
    assert job.state == "succeeded", (job.state, job.error)
    assert job.progress == 100 and job.model_version == bundle.version
    size = bundle.generator_config.size
    for kind in ("reconstruction", "edited"):
        artifact = job.artifact(kind)
        img = Image.open(io.BytesIO(artifacts.read(artifact)))
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (size, size)
        assert not img.info.get("exif")
    tensors, metadata = pipeline.read_latent(artifacts.read(job.latent))
    assert tuple(tensors["wplus"].shape) == (1, bundle.n_latent, bundle.generator_config.style_dim)
    assert metadata["model_version"] == bundle.version
    assert job.metrics["reconstruction_mse"] >= 0 and job.metrics["resolution"] == size
    assert job.started_at and job.finished_at and job.queued_at <= job.started_at <= job.finished_at
    assert audit_count(job.pk, "job.submitted") == 1
    assert audit_count(job.pk, "job.succeeded") == 1
    from audit.models import AuditEvent

    done = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded").payload
    assert done["latent_sha256"] == logged(job.latent_id)
    assert done["model_version"] == bundle.version
    assert done["outputs"] == {
        "reconstruction": logged(job.reconstruction_id),
        "edited": logged(job.edited_id),
        "result": logged(job.result_id),
        "aligned": logged(job.aligned_id),
        "transform": logged(job.transform_id),
    }
    original = Image.open(io.BytesIO(artifacts.read(job.original)))
    result = Image.open(io.BytesIO(artifacts.read(job.result)))
    assert result.format == "PNG" and result.size == original.size  # the photo's own size
    assert audit_count(job.pk, "job.domain_checked") == 1 and job.domain_report["explanation"]
    assert done["original_sha256"] == logged(job.original_id)
