"""Bring your own generator, end to end on a real face (issue 12, item 6).

An FFHQ-shaped bundle (1024 px, 18 W+ codes, the rosinality checkpoint layout; seeded
random weights with narrow channels so a CPU runs it in seconds: tests/jobs/ffhq_bundle.py)
declares ``ffhq`` alignment and a face domain. A real portrait that no training set here
contains -- matplotlib's ``grace_hopper.jpg`` -- goes through the API to a real worker
process on that bundle: dlib's 5-point landmarks (face-recognition-models, CC0) ->
FFHQ crop -> inversion -> edit -> paste-back at the photo's own 512x600. A photo with no
face fails with the typed ``no_face`` error the API shows.

(tests/inversion/test_align_ffhq.py checks the alignment and paste-back maths on the same
portrait at library level; tests/jobs/test_photo_pipeline.py runs the demo's product
domain through workers. This is the face domain through a worker.)
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audit.models import AuditEvent
from editplatform.jobs import artifacts
from editplatform.jobs.models import EditJob
from inversion.align import AlignmentTransform
from inversion.pasteback import paste_mask
from tests.jobs.conftest import (
    api_client,
    audit_count,
    gpu_queue_to_ourselves,
    submit_via_api,
    wait_for_state,
    worker_env_with,
)
from tests.jobs.ffhq_bundle import FEATHER, build_ffhq_shaped_bundle
from tests.jobs.helpers import logged


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _image(artifact) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO(artifacts.read(artifact))).convert("RGB"), dtype=np.int16
    )


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:  # ships with matplotlib
        return Image.open(f).convert("RGB")  # 512x600, one face


@pytest.fixture(scope="module")
def ffhq_bundle(tmp_path_factory) -> Path:
    return build_ffhq_shaped_bundle(tmp_path_factory.mktemp("byo"))


@pytest.fixture
def face_worker(start_worker, ffhq_bundle, settings):
    """Start a worker on the FFHQ-shaped bundle (the web side reads the same bundle).

    Called inside ``gpu_queue_to_ourselves()``, which would otherwise take the gpu queue
    from it too."""
    settings.MODEL_BUNDLE = ffhq_bundle
    settings.JOB_OUT_OF_DOMAIN = "flag"
    started = []

    def _start():
        env = worker_env_with(MODEL_BUNDLE=ffhq_bundle, JOB_OUT_OF_DOMAIN="flag")
        started.append(start_worker("ffhq-byo", queues="gpu", env=env))

    yield _start
    for worker in started:  # never leave a worker on another bundle consuming the gpu queue
        worker.stop()


def _submit(user, image: Image.Image) -> EditJob:
    response = submit_via_api(
        api_client(user), _png(image), edits=json.dumps({"smile": 3.0}), name="portrait.png"
    )
    assert response.status_code == 201, response.content
    return EditJob.objects.get(pk=response.json()["id"])


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_portrait_through_a_worker_on_an_ffhq_shaped_bundle(
    face_worker, requester, portrait, ffhq_bundle
):
    from inversion.bundle import load_bundle

    bundle = load_bundle(ffhq_bundle)
    assert bundle.generator_config.size == 1024 and bundle.generator_config.n_latent == 18
    assert bundle.domain.align == "ffhq" and bundle.domain.subject == "face"

    with gpu_queue_to_ourselves():
        face_worker()
        job = _submit(requester, portrait)
        job = wait_for_state(job.pk, {"succeeded", "failed", "awaiting_approval"}, timeout=240)
    assert job.state == "succeeded", (job.state, job.error_code, job.error)
    assert job.model_version == bundle.version

    # dlib found the face: the job's transform is an FFHQ crop from the 5 landmarks
    transform = AlignmentTransform.from_json(artifacts.read(job.transform))
    assert transform.method == "ffhq" and transform.source_size == portrait.size
    assert transform.meta["landmarks"] == "dlib-5" and transform.meta["faces_found"] == 1
    assert job.metrics["alignment"] == "ffhq" and job.domain_report["alignment"] == "ffhq"
    done = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded").payload
    assert done["outputs"]["transform"] == logged(job.transform_id)  # the alignment's record
    aligned = _image(job.aligned)
    assert aligned.shape == (1024, 1024, 3)  # the model's size, in colour

    # the result is the photo at its own size; only the face region changed
    original, result = _image(job.original), _image(job.result)
    assert result.shape == original.shape == (600, 512, 3)
    mask = paste_mask(transform, feather=FEATHER)
    changed = np.abs(result - original).max(axis=2) > 0
    assert int(changed[mask == 0].sum()) == 0  # pixel-exact outside the feathered mask
    assert int(changed[mask > 0].sum()) > 1000  # the edit reached the face
    eyes = np.asarray(transform.meta["points"])[:4].mean(0).round().astype(int)
    assert mask[eyes[1], eyes[0]] == 1.0  # the landmarks sit inside the pasted region
    assert (mask == 0).mean() > 0.3  # background, shoulders and uniform stay the photo's

    # a bundle without a gate: the fidelity numbers, and the requester is told it was unchecked
    report = job.domain_report
    assert report["gated"] is False and report["psnr"] is not None, report
    assert "declares no domain gate" in report["explanation"]
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert body["domain_report"]["explanation"] == report["explanation"]
    assert body["artifacts"]["result"]["width"] == 512
    assert body["artifacts"]["result"]["height"] == 600


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_photo_without_a_face_fails_with_the_typed_error(face_worker, requester):
    rng = np.random.default_rng(5)
    wall = Image.fromarray(np.clip(rng.normal(120, 3.0, (300, 400, 3)), 0, 255).astype(np.uint8))
    with gpu_queue_to_ourselves():
        face_worker()
        job = _submit(requester, wall)
        job = wait_for_state(job.pk, {"succeeded", "failed", "awaiting_approval"}, timeout=240)
    assert job.state == "failed" and job.error_code == "no_face", (job.state, job.error_code)
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert body["error_code"] == "no_face" and "face" in body["error"].lower()
    assert (
        AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.failed").payload["error_code"]
        == "no_face"
    )
    assert job.result_id is None and audit_count(job.pk, "job.domain_checked") == 0
