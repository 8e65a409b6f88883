"""The suite's test photos are in the shipped model's domain.

Tests that submit photos to a worker are about uploads, approvals, provenance, the
portal...; with the demo bundle's declared domain (``object`` alignment, a domain gate)
a generic picture would be refused at alignment or held as out of domain, and those
tests would be testing the gate. So tests.jobs.images makes catalogue photos; this test
runs them through exactly what a job does (alignment, colour mode, encoder, the bundle's
gate) and fails when a retrained bundle or a changed gate would make them out of domain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inversion.bundle import load_bundle
from inversion.bundle_domain import pipeline_crop
from inversion.inverter import Inverter
from inversion.preprocess import image_to_tensor
from tests.jobs import images

DEMO = Path(__file__).resolve().parents[2] / "inversion" / "bundles" / "demo"
SIZES = [(64, 48), (40, 40), (48, 48), (96, 72), (120, 90), (200, 150), (128, 128)]


@pytest.fixture(scope="module")
def demo():
    bundle = load_bundle(DEMO)
    assert bundle.domain.declared and bundle.domain_gate is not None
    return Inverter(bundle, "cpu", batch_size=64)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_test_photos_pass_the_shipped_domain_gate(demo, size):
    domain, gate = demo.bundle.domain, demo.bundle.domain_gate
    flagged = []
    for seed in range(24):
        _, crop, aligned = pipeline_crop(images.catalogue_photo(size, seed), domain)
        x = image_to_tensor(crop, demo.output_size)
        inv = demo.invert(x)
        crops = image_to_tensor(aligned, demo.output_size)
        (report,) = gate.assess(inv.wplus, inv.reconstruction, x, crops)
        if not report.in_domain:
            flagged.append((seed, report.reasons))
    assert flagged == []


def test_generic_pictures_are_not_what_the_tests_submit(demo):
    """The reason for the helper: a plain gradient is no catalogue photo."""
    import numpy as np
    from PIL import Image

    from inversion.align import AlignmentError

    y, x = np.mgrid[0:48, 0:64]
    gradient = np.stack([x * 4, y * 5, (x + y) * 2], -1).clip(0, 255).astype(np.uint8)
    try:
        _, crop, aligned = pipeline_crop(Image.fromarray(gradient), demo.bundle.domain)
    except AlignmentError:
        return  # refused at alignment: the job would fail `no_subject`
    t = image_to_tensor(crop, demo.output_size)
    inv = demo.invert(t)
    crops = image_to_tensor(aligned, demo.output_size)
    (report,) = demo.bundle.domain_gate.assess(inv.wplus, inv.reconstruction, t, crops)
    assert not report.in_domain
