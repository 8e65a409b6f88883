"""Quality mode ``refine`` on the trained demo bundle and held-out Fashion-MNIST items."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from inversion.evaluate import recon_metrics
from inversion.inverter import Inversion, Inverter
from inversion.refine import RefineError, refine
from tests.inversion.conftest import REPO_ROOT

DEMO = REPO_ROOT / "inversion" / "bundles" / "demo"


@pytest.fixture(scope="module")
def inverter() -> Inverter:
    return Inverter.from_path(DEMO, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def items() -> torch.Tensor:
    from inversion.training.data import load_fashion_mnist

    test, _ = load_fashion_mnist("test", size=32, limit=6)
    return test[:6]


@pytest.fixture(scope="module")
def fast(inverter: Inverter, items: torch.Tensor) -> Inversion:
    return inverter.invert(items)


def test_refine_improves_psnr_over_fast(inverter: Inverter, items: torch.Tensor,
                                        fast: Inversion) -> None:
    refined = inverter.refine(fast, items, 8)
    before = recon_metrics(fast.reconstruction, items)["psnr"]
    after = recon_metrics(refined.reconstruction, items)["psnr"]
    assert float(after.mean()) > float(before.mean()) + 0.5
    assert (after > before).all()
    # the encoder's result is not modified in place
    assert torch.equal(fast.wplus, inverter.invert(items).wplus)


def test_step_cap_and_progress(inverter: Inverter, items: torch.Tensor,
                               fast: Inversion) -> None:
    fractions: list[float] = []
    capped = refine(inverter, fast[:2], items[:2], 50, max_steps=3,
                    progress=lambda stage, f: fractions.append(f))
    assert len(fractions) == 3 + 1  # one report per step actually run, then done
    same = refine(inverter, fast[:2], items[:2], 3)
    assert torch.equal(capped.wplus, same.wplus)
    untouched = refine(inverter, fast[:2], items[:2], 0)
    assert torch.equal(untouched.wplus, fast[:2].wplus)
    with pytest.raises(RefineError, match="steps"):
        refine(inverter, fast[:2], items[:2], -1)
    with pytest.raises(RefineError, match="target"):
        refine(inverter, fast[:2], items[:3], 2)


def test_refine_is_deterministic(inverter: Inverter, items: torch.Tensor,
                                 fast: Inversion) -> None:
    a = inverter.refine(fast[:3], items[:3], 4, seed=1)
    b = inverter.refine(fast[:3], items[:3], 4, seed=1)
    assert torch.equal(a.wplus, b.wplus)
    assert torch.equal(a.detail, b.detail)
    assert torch.equal(a.reconstruction, b.reconstruction)


def test_invert_quality_refine_matches_refine(inverter: Inverter, items: torch.Tensor,
                                              fast: Inversion) -> None:
    via_invert = inverter.invert(items[:2], quality="refine", refine_steps=3)
    direct = inverter.refine(inverter.invert(items[:2]), items[:2], 3)
    assert torch.equal(via_invert.wplus, direct.wplus)
    assert not torch.allclose(via_invert.wplus, fast[:2].wplus, atol=1e-4)
    with pytest.raises(ValueError, match="quality"):
        inverter.invert(items[:2], quality="best")  # type: ignore[arg-type]


def test_edit_after_refine(inverter: Inverter, items: torch.Tensor, fast: Inversion) -> None:
    refined = inverter.refine(fast[:3], items[:3], 4)
    # strength 0 reproduces the refined reconstruction (the Fuser gets d = 0)
    zero = inverter.edit(refined, {"tone": 0.0})
    assert torch.allclose(zero, refined.reconstruction, atol=1e-5)
    # a real edit moves the image, through the Fuser with d = w_edit - w
    edited = inverter.edit(refined, {"tone": 2.0})
    assert (edited - refined.reconstruction).abs().mean() > 1e-3
    # the refined latent survives the one latent format
    again = Inversion.from_bytes(refined.to_bytes())
    assert torch.equal(inverter.edit(again, {"tone": 2.0}), edited)


def test_cli_invert_quality_refine(tmp_path, items: torch.Tensor) -> None:
    from inversion.preprocess import tensor_to_images

    path = tmp_path / "item.png"
    tensor_to_images(items[:1])[0].save(path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "inversion", "invert", "--bundle", str(DEMO), str(path),
         "--out", str(out), "--quality", "refine", "--refine-steps", "3", "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "item.png").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "inversion", "invert", "--bundle", str(DEMO), str(path),
         "--out", str(out), "--quality", "refine", "--refine-steps", "-2"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert bad.returncode == 1 and "steps" in bad.stderr
