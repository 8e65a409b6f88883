"""Assertions shared by the worker and browser tests."""

from __future__ import annotations

import io

from PIL import Image

from editplatform.jobs import artifacts, pipeline
from editplatform.jobs.models import EditJob
from tests.jobs.conftest import audit_count


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
    assert done["latent_sha256"] == job.latent_id and done["model_version"] == bundle.version
    assert done["outputs"] == {
        "reconstruction": job.reconstruction_id,
        "edited": job.edited_id,
        "result": job.result_id,
        "aligned": job.aligned_id,
        "transform": job.transform_id,
    }
    original = Image.open(io.BytesIO(artifacts.read(job.original)))
    result = Image.open(io.BytesIO(artifacts.read(job.result)))
    assert result.format == "PNG" and result.size == original.size  # the photo's own size
    assert audit_count(job.pk, "job.domain_checked") == 1 and job.domain_report["explanation"]
    assert done["original_sha256"] == job.original_id
