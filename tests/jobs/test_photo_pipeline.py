"""Real photos in, real photos out (issue 12) through the API on real worker processes.

A copy of the platform's bundle gets a declared domain (product photos, ``object``
alignment, greyscale, a domain gate calibrated on Fashion-MNIST catalogue canvases), and
a worker started on it runs: a held-out Fashion-MNIST item placed off-centre on a
512x512 canvas (released at 512x512, every pixel outside the feathered mask unchanged,
every artifact in the audit log), an out-of-domain photo under each JOB_OUT_OF_DOMAIN
policy, and a photo with no subject (``no_subject``).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
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
from tests.jobs.helpers import logged

FEATHER = 0.1


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def catalogue_canvas(
    index: int, size: int = 512, scale: int = 9, pos=(0.2, 0.65), seed: int = 0
) -> Image.Image:
    """A held-out Fashion-MNIST test item, light on a dark plain canvas, off-centre."""
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

    item = read_idx(ensure_fashion_mnist() / FASHION_FILES["test"][0])[index]
    rng = np.random.default_rng(seed)
    big = np.asarray(
        Image.fromarray(item).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC),
        dtype=np.float64,
    )
    canvas = np.full((size, size), 6.0)
    x0, y0 = int(pos[0] * (size - 28 * scale)), int(pos[1] * (size - 28 * scale))
    canvas[y0 : y0 + 28 * scale, x0 : x0 + 28 * scale] = np.maximum(6.0, big)
    canvas += rng.normal(0, 1.5, canvas.shape)
    grey = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, 2))


def portrait_on_canvas(size: int = 512) -> Image.Image:
    """matplotlib's grace_hopper.jpg as a 'product' on a plain canvas.

    It aligns, but is no clothing item.
    """
    import matplotlib

    photo = Image.open(
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    ).convert("RGB")
    photo = photo.resize((220, 256))
    canvas = Image.new("RGB", (size, size), (6, 6, 6))
    canvas.paste(photo, (150, 120))
    return canvas


@pytest.fixture(scope="module")
def domain_bundle(tmp_path_factory) -> Path:
    """A copy of the platform's bundle with a declared product domain and a calibrated gate."""
    from inversion.bundle import load_bundle
    from inversion.bundle_domain import BundleDomain, apply_domain, calibrate_gate, calibration_set
    from inversion.inverter import Inverter

    src = Path(settings.MODEL_BUNDLE)
    if not (src / "manifest.json").exists():
        from inversion.bundle import build_random_bundle

        build_random_bundle(src, preset="tiny", seed=0)
    path = tmp_path_factory.mktemp("bundles") / "photo"
    shutil.copytree(src, path)
    bundle = load_bundle(path)
    domain = BundleDomain(
        subject="product",
        align="object",
        resolution=bundle.generator_config.size,
        colour="grey",
        feather=FEATHER,
        description="Fashion-MNIST clothing items, light on a dark background",
    )
    gate = calibrate_gate(
        Inverter(bundle, "cpu", batch_size=64),
        domain,
        calibration_set("fashion-mnist", fit=160, calib=80),
        quantile=0.99,
    )
    apply_domain(path, domain, gate, command="tests/jobs/test_photo_pipeline.py")
    return path


@pytest.fixture
def photo_worker(start_worker, domain_bundle, settings):
    """Start a worker on the domain bundle with a JOB_OUT_OF_DOMAIN policy (the web side too)."""
    settings.MODEL_BUNDLE = domain_bundle
    started = []

    def _start(policy: str = "approve", **env):
        settings.JOB_OUT_OF_DOMAIN = policy
        worker = start_worker(
            f"photo-{policy}",
            queues="gpu",
            env=worker_env_with(MODEL_BUNDLE=domain_bundle, JOB_OUT_OF_DOMAIN=policy, **env),
        )
        started.append(worker)
        return worker

    yield _start
    for worker in started:  # never leave a worker on another bundle consuming the shared gpu queue
        worker.stop()


def _submit(user, image: Image.Image, **kwargs) -> EditJob:
    response = submit_via_api(api_client(user), _png(image), **kwargs)
    assert response.status_code == 201, response.content
    return EditJob.objects.get(pk=response.json()["id"])


def _event(job, action: str) -> dict:
    return AuditEvent.objects.get(subject=f"job:{job.pk}", action=action).payload


def _image(artifact) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO(artifacts.read(artifact))).convert("RGB"), dtype=np.int16
    )


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_catalogue_photo_comes_back_full_size_with_only_the_subject_changed(
    photo_worker, requester
):
    from inversion.bundle import load_bundle

    bundle = load_bundle(settings.MODEL_BUNDLE)
    canvas = catalogue_canvas(index=0)
    with gpu_queue_to_ourselves():
        photo_worker("approve")
        job = _submit(requester, canvas)
        job = wait_for_state(job.pk, {"succeeded", "failed", "awaiting_approval"}, timeout=180)
    assert job.state == "succeeded", (job.state, job.error_code, job.error, job.domain_report)
    assert job.model_version == bundle.version
    report = job.domain_report
    assert report["gated"] is True and report["in_domain"] is True, report
    assert (
        report["ood_score"] <= report["ood_max"]
        and report["psnr"] > 0
        and "trained on" in report["explanation"]
    )

    # The main result: the photo at its own size; outside the feathered mask not one pixel changed.
    original, result = _image(job.original), _image(job.result)
    assert result.shape == original.shape == (512, 512, 3)
    transform = AlignmentTransform.from_json(artifacts.read(job.transform))
    assert transform.method == "object" and transform.source_size == (512, 512)
    mask = paste_mask(transform, feather=FEATHER)
    changed = np.abs(result - original).max(axis=2) > 0
    assert int(changed[mask == 0].sum()) == 0
    assert int(changed[mask > 0].sum()) > 100  # the edit reached the photo
    assert (mask == 0).mean() > 0.5  # the item is small on the canvas: most of it is outside
    aligned = _image(job.aligned)
    assert aligned.shape == (bundle.generator_config.size,) * 2 + (3,)
    assert (aligned[..., 0] == aligned[..., 1]).all()  # greyscale domain

    # Every artifact is linked in the audit log, and the decision is an event.
    done = _event(job, "job.succeeded")
    assert done["outputs"] == {
        "reconstruction": logged(job.reconstruction_id),
        "edited": logged(job.edited_id),
        "result": logged(job.result_id),
        "aligned": logged(job.aligned_id),
        "transform": logged(job.transform_id),
    }
    assert done["latent_sha256"] == logged(job.latent_id)
    checked = _event(job, "job.domain_checked")
    assert checked["decision"] == "released" and checked["report"] == report
    assert checked["outputs"]["result"] == logged(job.result_id)

    # The API shows the same: the report, its explanation, and the full-size result.
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert (
        body["out_of_domain"] is False
        and body["domain_report"]["explanation"] == report["explanation"]
    )
    assert (
        body["artifacts"]["result"]["width"] == 512 and body["artifacts"]["result"]["height"] == 512
    )
    download = api_client(requester).get(body["artifacts"]["result"]["url"])
    assert download.status_code == 200 and download["Content-Type"] == "image/png"


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["approve", "refuse", "flag"])
def test_out_of_domain_photo_is_held_refused_or_flagged_per_policy(
    photo_worker, requester, approver, policy
):
    with gpu_queue_to_ourselves():
        photo_worker(policy)
        job = _submit(requester, portrait_on_canvas())
        job = wait_for_state(job.pk, {"succeeded", "failed", "awaiting_approval"}, timeout=180)
    report = job.domain_report
    assert (
        report["in_domain"] is False
        and "outside what the model can represent" in report["explanation"]
    )
    assert report["reasons"], report
    checked = _event(job, "job.domain_checked")
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert body["out_of_domain"] is True and body["domain_report"]["reasons"] == report["reasons"]
    if policy == "approve":
        # computed, then held: the outputs exist but the requester cannot read them until released
        assert job.state == "awaiting_approval" and job.needs_approval, (job.state, job.error)
        assert (
            job.result_id
            and checked["decision"] == "held"
            and checked["outputs"]["result"] == logged(job.result_id)
        )
        assert audit_count(job.pk, "job.held") == 1 and audit_count(job.pk, "job.succeeded") == 0
        assert "result" not in body["artifacts"] and "edited" not in body["artifacts"]
        from editplatform.jobs import policy as job_policy
        from tests import catalog

        assert "out_of_domain" in job_policy.approval_reasons(job, catalog.catalog())
        # The approver's page shows the report: verdict, explanation and the numbers.
        page = api_client(approver).get(f"/approvals/{job.pk}/").content.decode()
        assert 'id="domain-report"' in page and "Outside the model's domain" in page
        assert f"{report['ood_score']:.2f}" in page and f"{report['psnr']:.2f} dB" in page
        assert "outside what the model can represent" in page
        # An approver who saw the report releases it; then the requester gets the full-size result.
        from editplatform.approvals import services as approvals

        approvals.approve(
            job,
            approver,
            params_sha256=job.params_sha256,
            outputs_sha256=job_policy.outputs_sha256(job),
            comment="out of domain, acceptable",
        )
        job.refresh_from_db()
        assert job.state == "succeeded"
        body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
        # released: the result served is its marked copy (provenance) once marked
        released = job.marked_result_id or job.result_id
        assert body["artifacts"]["result"]["sha256"] == released and body["out_of_domain"] is True
    elif policy == "refuse":
        assert job.state == "failed" and job.error_code == "out_of_domain"
        assert job.error == report["explanation"] and body["error_code"] == "out_of_domain"
        assert checked["decision"] == "refused" and job.result_id is None
        assert _event(job, "job.failed")["error_code"] == "out_of_domain"
    else:
        assert job.state == "succeeded" and job.result_id
        assert checked["decision"] == "flagged"
        assert _event(job, "job.succeeded")["domain"] == {"in_domain": False, "decision": "flagged"}


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_refine_quality_runs_the_capped_optimisation_and_is_judged_like_fast(
    photo_worker, requester, settings
):
    """quality=refine on a real worker: REFINE_MAX_STEPS steps, a closer reconstruction
    of the same crop than fast, the same domain report (the gate judges the encoder's
    latent), and a different params_sha256."""
    canvas = catalogue_canvas(index=4, pos=(0.7, 0.25))
    with gpu_queue_to_ourselves():
        photo_worker("flag", REFINE_MAX_STEPS=12)
        fast = _submit(requester, canvas)
        refine = _submit(requester, canvas, extra={"quality": "refine"})
        fast = wait_for_state(fast.pk, {"succeeded", "failed"}, timeout=180)
        refine = wait_for_state(refine.pk, {"succeeded", "failed"}, timeout=180)
    assert fast.state == refine.state == "succeeded", (refine.error_code, refine.error)
    assert (fast.quality, refine.quality) == ("fast", "refine")
    assert fast.metrics["quality"] == "fast" and "refine_steps" not in fast.metrics
    assert refine.metrics["quality"] == "refine" and refine.metrics["refine_steps"] == 12
    assert fast.aligned_id == refine.aligned_id  # the same crop ...
    assert (
        refine.metrics["reconstruction_psnr_db"] > fast.metrics["reconstruction_psnr_db"] + 0.1
    )  # ... redrawn more faithfully
    assert refine.latent_id != fast.latent_id
    assert refine.domain_report == fast.domain_report
    assert refine.params_sha256 != fast.params_sha256
    assert _event(refine, "job.submitted")["quality"] == "refine"


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_photo_without_a_subject_fails_with_a_clear_code(photo_worker, requester):
    rng = np.random.default_rng(3)
    blank = Image.fromarray(np.clip(rng.normal(200, 1.0, (300, 400, 3)), 0, 255).astype(np.uint8))
    with gpu_queue_to_ourselves():
        photo_worker("approve")
        job = _submit(requester, blank)
        job = wait_for_state(job.pk, {"succeeded", "failed", "awaiting_approval"}, timeout=180)
    assert job.state == "failed" and job.error_code == "no_subject", (
        job.state,
        job.error_code,
        job.error,
    )
    body = api_client(requester).get(f"/api/v1/jobs/{job.pk}").json()
    assert body["error_code"] == "no_subject" and body["error"]
    assert _event(job, "job.failed")["error_code"] == "no_subject"
    assert job.result_id is None and audit_count(job.pk, "job.domain_checked") == 0


def test_alignment_errors_map_to_the_codes_requesters_see():
    from editplatform.jobs.tasks import alignment_failure
    from inversion.align import FaceIndexOutOfRange, MultipleFaces, NoFaceFound, NoObjectFound

    assert alignment_failure(NoFaceFound()) == ("no_face", {})
    assert alignment_failure(MultipleFaces(3)) == ("multiple_faces", {"face_count": 3})
    assert "3 faces" in str(MultipleFaces(3))
    assert alignment_failure(FaceIndexOutOfRange(5, 2)) == (
        "face_index_out_of_range",
        {"face_count": 2, "face_index": 5},
    )
    assert alignment_failure(NoObjectFound("nothing stands out")) == ("no_subject", {})


def test_bundle_domain_round_trips_and_is_hashed(domain_bundle, tmp_path):
    from inversion.bundle import load_bundle
    from inversion.bundle_domain import DOMAIN_GATE_FILE
    from inversion.errors import BundleIntegrityError, ManifestError

    bundle = load_bundle(domain_bundle)
    assert (
        bundle.domain.align == "object"
        and bundle.domain.colour == "grey"
        and bundle.domain_gate is not None
    )
    manifest = json.loads((domain_bundle / "manifest.json").read_text())
    assert DOMAIN_GATE_FILE in manifest["files"] and manifest["domain"]["gate"]["ood_max"] > 0
    assert manifest["domain"]["gate"] == bundle.domain_gate.thresholds.to_dict()

    broken = tmp_path / "broken"
    shutil.copytree(domain_bundle, broken)
    data = bytearray((broken / DOMAIN_GATE_FILE).read_bytes())
    data[-1] ^= 1
    (broken / DOMAIN_GATE_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=DOMAIN_GATE_FILE):
        load_bundle(broken)

    bad = tmp_path / "bad"
    shutil.copytree(domain_bundle, bad)
    manifest["domain"]["align"] = "sideways"
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="align"):
        load_bundle(bad)
