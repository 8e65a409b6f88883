from __future__ import annotations

import json

import pytest
import torch

from inversion.baselines.psp import GradualStyleEncoder, PSPConfig
from inversion.evaluate import evaluate, recon_metrics, ssim, write_report
from inversion.training.checkpoint import save_checkpoint
from inversion.training.classifier import AttributeClassifier


def test_ssim_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    worse = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    s1, s2 = ssim(x, noisy), ssim(x, worse)
    assert (s1 < 1).all() and (s2 < s1).all()
    assert torch.allclose(ssim(noisy, x), s1, atol=1e-6)  # symmetric
    # constant images: SSIM reduces to the luminance term (2ab + c1) / (a^2 + b^2 + c1)
    a, b = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), 0.6)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert torch.allclose(ssim(a, b), torch.tensor([expected]), atol=1e-5)


def test_recon_metrics_psnr():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.full((1, 3, 8, 8), 0.2)  # 0.1 on the [0, 1] scale
    m = recon_metrics(y, x)
    assert torch.allclose(m["mse"], torch.tensor([0.01]))
    assert torch.allclose(m["psnr"], torch.tensor([20.0]))


@pytest.fixture
def eval_parts(random_bundle_dir, tmp_path):
    torch.manual_seed(0)
    clf = AttributeClassifier(width=4).eval()
    save_checkpoint(tmp_path / "clf.pt", {"state": clf.state_dict(), "width": 4, "summary": {}})
    cfg = PSPConfig.tiny()
    psp = GradualStyleEncoder(cfg)
    save_checkpoint(
        tmp_path / "psp.pt",
        {
            "arch": "psp",
            "encoder_config": cfg.to_dict(),
            "encoder": psp.state_dict(),
            "fuser_config": None,
            "fuser": None,
            "train": {},
        },
    )
    return random_bundle_dir, tmp_path / "clf.pt", tmp_path / "psp.pt"


def test_evaluation_runs_on_8_images(eval_parts, tmp_path, fixed_batch):
    bundle, clf, psp = eval_parts
    images = fixed_batch[0][:8]
    result = evaluate(
        bundle,
        clf,
        psp,
        images=images,
        opt_n=4,
        opt_steps=3,
        batch=8,
        grid_path=tmp_path / "grid.png",
        progress=False,
        previous=bundle,
    )
    m = result["methods"]
    assert {"ours", "ours_no_fuser", "psp", "optimisation", "ours_on_opt_subset"} <= set(m)
    # the replaced bundle, on the same images (here the same bundle: the same figures)
    assert m["previous"]["psnr"] == pytest.approx(m["ours"]["psnr"], abs=1e-4)
    assert m["previous_on_opt_subset"]["n"] == 4
    assert m["ours"]["n"] == 8 and m["optimisation"]["n"] == 4
    for r in (m["ours"], m["psp"], m["optimisation"]):
        assert 0 < r["mse"] < 4 and r["ms_per_image"] > 0
        assert abs(r["psnr"] - 10 * torch.log10(torch.tensor(1 / r["mse"])).item()) < 3
    assert m["psp"]["parameters"] > 0
    # the random bundle's catalog has no supervised (InterFaceGAN) edits
    assert result["edits"] == {}
    assert (tmp_path / "grid.png").stat().st_size > 0
    report = write_report(
        result,
        tmp_path / "docs" / "quality.md",
        extra={"a": 1},
        command="python -m inversion evaluate ...",
    )
    text = report.read_text()
    assert "| MambaStyle encoder + Fuser (ours) | 8 |" in text
    assert "| previous bundle `" in text
    # sections written below the report by others survive a re-render
    report.write_text(text + "## Alignment\n\nhand-written\n")
    again = write_report(result, report, extra={"a": 1}).read_text()
    assert again.endswith("## Alignment\n\nhand-written\n") and again.count("## Alignment") == 1
    assert "pSp baseline" in text and "## Goals" in text and "grid.png" in text
    json.dumps(result)  # JSON-serialisable for the manifest


def test_optimisation_lowers_error(tiny_generator):
    from inversion.evaluate import optimise_inversion

    g, avg = tiny_generator
    with torch.no_grad():
        target = g.synthesis(g.get_latent(torch.randn(4, g.style_dim)), noise="const")
        start = g.synthesis(avg.reshape(1, -1).repeat(4, 1), noise="const")
    rec = optimise_inversion(g, avg, target, steps=15, lr=0.05)
    assert float((rec - target).pow(2).mean()) < 0.5 * float((start - target).pow(2).mean())
