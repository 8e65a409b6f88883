"""The shipped demo bundle: loads, verifies its hashes, reproduces its recorded PSNR."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inversion.bundle import load_bundle, verify_bundle_files
from inversion.errors import InversionError

DEMO = Path(__file__).resolve().parents[3] / "inversion" / "bundles" / "demo"


def test_demo_bundle_is_small_and_trained():
    files = [p for p in DEMO.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 1024 * 1024
    bundle = load_bundle(DEMO)  # verifies every SHA-256
    prov = bundle.provenance
    assert "untrained" not in str(prov.get("training", "")).lower()
    assert prov["commands"] and "dataset-fashion-mnist" in prov["data"]
    assert bundle.catalog.names and any(s.sensitive for s in bundle.catalog)
    assert "ci_reconstruction" in bundle.metrics


def test_demo_bundle_refuses_a_flipped_byte(tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    target = copy / "encoder.safetensors"
    data = bytearray(target.read_bytes())
    data[-10] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(InversionError):
        verify_bundle_files(copy)


def test_demo_bundle_reproduces_its_recorded_psnr():
    from inversion.training.recipe import ci_reconstruction_psnr

    recorded = load_bundle(DEMO).metrics["ci_reconstruction"]
    measured = ci_reconstruction_psnr(DEMO)
    assert abs(measured - recorded["psnr_db"]) <= 0.1, (measured, recorded)
