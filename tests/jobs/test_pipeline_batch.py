"""The batched model work without a database (:mod:`editplatform.jobs.pipeline_batch`):
a job judged and rendered inside a batch gets the bytes *and the domain report* it gets
alone, and the worker's torch thread setting survives the fused scan's thread pool.

Real model (the shipped demo bundle), real photos in its domain; no services needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from editplatform.jobs import pipeline, pipeline_batch
from inversion.bundle import load_bundle
from inversion.inverter import Inverter
from tests import catalog
from tests.jobs import images

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inverter(model_bundle):
    return Inverter(load_bundle(model_bundle), batch_size=4, fixed_batch=True)


def _fields(result) -> tuple:
    return (
        result.latent,
        result.reconstruction_png,
        result.edited_png,
        result.result_png,
        result.aligned_png,
        result.transform_json,
    )


def test_a_job_in_a_batch_gets_its_lone_bytes_and_domain_report(inverter):
    photos = [images.jpeg((120, 90), seed=s) for s in (5, 21, 22)]
    edits = catalog.request(fraction=0.8)
    alone = [pipeline.run(inverter, p, edits, lambda *a: None) for p in photos]
    items = [
        pipeline_batch.Item(original_png=p, edits=edits, report=lambda *a: None, key=i)
        for i, p in enumerate(photos)
    ]
    pipeline_batch.run_batch(inverter, items)
    for lone, item in zip(alone, items, strict=True):
        assert isinstance(item.outcome, pipeline.PipelineResult), item.outcome
        assert _fields(item.outcome) == _fields(lone)
        assert item.outcome.domain == lone.domain and lone.domain["gated"] is True
        assert item.outcome.timings["batch"] == 3
    # the gate really judged each job: the reports differ between photos
    assert len({r.domain["ssim"] for r in alone}) == 3


def test_domain_checks_pads_to_the_batch_and_drops_the_padding(inverter):
    photos = [images.jpeg((120, 90), seed=s) for s in (5, 21)]
    domain = pipeline.bundle_domain(inverter)
    prepared = [pipeline.prepare(p, domain, None, {}) for p in photos]
    encoded = inverter.invert([p.crop for p in prepared], seed=[0, 0])
    reports = pipeline.domain_checks(
        inverter,
        [encoded[0], encoded[1]],
        [p.crop for p in prepared],
        domain,
        [p.aligned for p in prepared],
    )
    assert len(reports) == 2
    assert reports[1] == pipeline.domain_check(
        inverter, encoded[1], prepared[1].crop, domain, aligned=prepared[1].aligned
    )


SCAN_THEN_THREADS = """
import django, torch
django.setup()
from editplatform.jobs import engine
from inversion.ops.selective_scan import selective_scan
engine.configure_torch()
b, d, length, n = 1, 64, 512, 4
with torch.inference_mode():
    selective_scan(torch.randn(b, d, length), torch.rand(b, d, length), -torch.rand(d, n),
                   torch.randn(b, n, length), torch.randn(b, n, length), backend="cpu_fused")
print(torch.get_num_threads())
"""


def test_worker_keeps_its_torch_threads_after_the_fused_scan():
    """A fresh process, as a worker is: numba's thread pool starts at the first fused
    scan and used to reset OpenMP's (so torch's) thread count to every core."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="editplatform.settings",
        JOB_TORCH_THREADS="1",
        OMP_NUM_THREADS="",
        PYTHONPATH=str(ROOT),
    )
    env.pop("OMP_NUM_THREADS")
    out = subprocess.run(
        [sys.executable, "-c", SCAN_THEN_THREADS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "1", out.stdout + out.stderr


def test_worker_warm_up_runs_both_batch_shapes_through(inverter, caplog, monkeypatch):
    """The worker's start-up pass (editplatform.jobs.warm_up) runs the whole pipeline at
    batch 1 and at the batch size, and every item comes through (a warm-up whose photo
    failed alignment would warm nothing past it). It swallows faults (a cold start is
    slower, not wrong), so it also must not have logged one."""
    from editplatform.jobs.warm_up import warm_up

    ran = []
    real = pipeline_batch.run_batch

    def recording(inverter, items, **kwargs):
        done = real(inverter, items, **kwargs)
        ran.append([type(item.outcome).__name__ for item in items])
        return done

    monkeypatch.setattr(pipeline_batch, "run_batch", recording)
    with caplog.at_level("INFO", logger="editplatform.jobs.warm_up"):
        assert warm_up(inverter, 4) is not None
    assert ran == [["PipelineResult"], ["PipelineResult"] * 4]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "batch sizes 1 and 4" in caplog.text


def test_worker_warm_up_of_a_face_bundle_aligns_its_photo_by_centre(inverter, caplog, monkeypatch):
    """A face bundle's ``ffhq`` alignment finds no face in the synthetic photo: the
    warm-up aligns it with ``center`` instead, so the model passes are still warmed."""
    import dataclasses

    from editplatform.jobs.warm_up import warm_up

    face = dataclasses.replace(pipeline.bundle_domain(inverter), align="ffhq")
    monkeypatch.setattr(inverter.bundle, "domain", face, raising=False)
    with caplog.at_level("INFO", logger="editplatform.jobs.warm_up"):
        warm_up(inverter, 2)
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    assert pipeline.bundle_domain(inverter).align == "ffhq"  # the bundle's own, untouched


def test_in_stage_progress_is_passed_on_at_most_once_per_interval():
    told = []
    fine = pipeline.at_most_every(lambda stage, pct: told.append((stage, pct)), 0.3)
    fine("edit", 60)  # right after the stage began: dropped
    time.sleep(0.35)
    fine("edit", 70)
    fine("edit", 75)  # right after the last one passed on: dropped
    assert told == [("edit", 70)]


def test_a_lone_job_reports_every_stage_boundary(inverter, monkeypatch):
    """Stage boundaries are never throttled (cancellation is noticed there); in-stage
    reports are (an interval no demo stage lasts, so none passes here)."""
    monkeypatch.setattr(pipeline, "FINE_PROGRESS_SECONDS", 60.0)
    told = []
    pipeline.run(
        inverter,
        images.jpeg((120, 90), seed=5),
        catalog.request(fraction=0.8),
        lambda stage, pct: told.append(stage),
    )
    assert told == ["load", "align", "invert", "edit", "paste back", "store"]
