"""``python -m inversion gpucheck``: its CPU parts run here; its GPU parts refuse cleanly
without CUDA (the machines that run `make test` have none), after writing what ran."""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch

from inversion import gpucheck
from inversion.cli import main


def test_cpu_only_checks_scans_and_writes_json(tmp_path, capsys):
    out = tmp_path / "sub" / "gpu-check.json"
    assert main(["gpucheck", "--out", str(out), "--cpu-only"]) == 0
    assert "scan_cpu: ok" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["ok"] is True and result["gpu"] == {"skipped": "--cpu-only"}
    assert result["environment"]["torch"] == torch.__version__
    scan = result["scan_cpu"]
    assert scan["ok"] is True and scan["fused_cpu"] == "numba kernel"
    assert {c["case"] for c in scan["cases"]} == {"ss2d_grouped", "constant_BC"}
    for case in scan["cases"]:
        # torch vs fused CPU scan vs the per-step loop, both dtypes, and torch's gradients
        assert case["cpu_fused_float64_y_rel"] < 1e-12 and case["torch_float64_last_rel"] < 1e-12
        assert case["cpu_fused_float32_y_rel"] < 1e-5 and case["torch_float32_y_rel"] < 1e-5
        assert set(case["torch_grad_rel"]) == set(gpucheck.INPUTS)
        assert max(case["torch_grad_rel"].values()) < 1e-12


def test_scan_check_detects_a_wrong_scan(monkeypatch):
    """The check compares real numbers: a scan that is off by a little fails it."""
    ss = importlib.import_module("inversion.ops.selective_scan")  # the module, not the function
    real = ss.selective_scan

    def off(*args, **kw):
        y, last = real(*args, **kw)
        return y * (1 + 1e-3), last

    monkeypatch.setattr(ss, "selective_scan", off)
    result = gpucheck.check_scan_cpu()
    assert result["ok"] is False
    assert all(c["cpu_fused_float64_y_rel"] > 1e-4 for c in result["cases"])


def test_gpu_parts_refuse_cleanly_without_cuda(tmp_path, capsys):
    out = tmp_path / "gpu-check.json"
    code = main(["gpucheck", "--out", str(out), "--repeats", "1"])
    result = json.loads(out.read_text())
    if torch.cuda.is_available():  # a CUDA machine runs them instead
        assert code in (0, 1) and "scan_cuda" in result
        return
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the GPU checks need CUDA:") and "--cpu-only" in err
    assert result["ok"] is False and "need CUDA" in result["gpu"]["error"]
    assert result["scan_cpu"]["ok"] is True  # the CPU part ran and is on file
    with pytest.raises(gpucheck.GpuUnavailable, match="need CUDA"):
        gpucheck.require_cuda()
    with pytest.raises(gpucheck.GpuUnavailable, match="mamba_ssm's kernel cannot run"):
        gpucheck.check_scan_cuda(torch.device("cpu"))


def test_bad_sizes_are_refused(tmp_path, capsys):
    assert main(["gpucheck", "--out", str(tmp_path / "x.json"), "--sizes", "512"]) == 1
    assert "FFHQ shapes are [256, 1024]" in capsys.readouterr().err
    assert main(["gpucheck", "--out", str(tmp_path / "x.json"), "--batches", "a"]) == 1
    assert not (tmp_path / "x.json").exists()


def test_precision_and_throughput_figures_on_tiny_models():
    """The model checks' code on CPU with the tiny preset (the GPU run uses FFHQ shapes)."""
    models = gpucheck.build_random_models("tiny", latent_samples=64)
    again = gpucheck.build_random_models("tiny", latent_samples=64)
    for k in ("generator", "encoder", "fuser"):  # seeded: the same weights every time
        for p, q in zip(models[k].parameters(), again[k].parameters(), strict=True):
            assert torch.equal(p, q)
    prec = gpucheck.check_precision(models, ("bfloat16",), batch=2, device="cpu")
    bf16 = prec["bfloat16"]
    assert bf16["finite"] and math.isfinite(bf16["image_psnr_db"])
    assert 15 < bf16["image_psnr_db"] < 120 and bf16["wplus_psnr_db"] > 15
    assert prec["ok"] == (bf16["image_psnr_db"] >= gpucheck.MIN_PSNR_DB)
    thr = gpucheck.check_throughput(models, [1, 2], ["float32"], repeats=1, device="cpu")
    assert thr["ok"] and [(r["dtype"], r["batch"]) for r in thr["rows"]] == [
        ("float32", 1),
        ("float32", 2),
    ]
    assert all(r["images_per_s"] > 0 and r["latency_s"] > 0 for r in thr["rows"])
