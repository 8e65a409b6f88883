"""docs/quality.md must describe the bundle that ships, not an earlier one.

The report names the bundle version (SHA-256 of ``manifest.json``); rebuilding the demo
bundle without re-running the evaluation and finalize step makes this test fail.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "inversion" / "bundles" / "demo"
REPORT = ROOT / "docs" / "quality.md"


def test_quality_doc_names_the_shipped_bundle_version():
    shipped = hashlib.sha256((DEMO / "manifest.json").read_bytes()).hexdigest()
    text = REPORT.read_text(encoding="utf-8")
    named = re.findall(r"version `([0-9a-f]{64})`", text)
    assert named, "docs/quality.md names no full bundle version"
    assert named[0] == shipped, (named[0], shipped)


def test_quality_doc_reports_baselines_load_and_both_timings():
    text = REPORT.read_text(encoding="utf-8")
    for needle in (
        "downsample to 16x16 and back (bilinear)",
        "downsample to 8x8 and back (bicubic)",
        "single image, batch 1",
        "batch throughput",
        "load average",
        "not converged",
    ):
        assert needle in text, needle


def test_quality_doc_edit_rows_match_the_shipped_catalog():
    from inversion.bundle import load_bundle
    from inversion.training.classifier import ATTRIBUTES
    from inversion.training.edit_measures import attribute_of

    text = REPORT.read_text(encoding="utf-8")
    bundle = load_bundle(DEMO)
    for spec in bundle.catalog:
        if attribute_of(spec) in ATTRIBUTES:
            assert f"| {spec.name} |" in text, spec.name
            assert spec.changes and spec.preserves and spec.measured, spec.name
    assert bundle.metrics["edits"].keys() == {
        s.name for s in bundle.catalog if attribute_of(s) in ATTRIBUTES
    }
