"""Domain gate: Ledoit-Wolf Mahalanobis on W+ of the shipped demo bundle, fidelity, storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inversion.domain import (
    DomainError,
    DomainGate,
    DomainThresholds,
    LatentGaussian,
    fidelity,
    latent_features,
    ledoit_wolf,
    out_of_domain_probes,
    reports_to_json,
)
from inversion.evaluate import recon_metrics
from inversion.inverter import Inverter
from inversion.training.data import load_fashion_mnist

DEMO = Path(__file__).resolve().parents[2] / "inversion" / "bundles" / "demo"
FIT, CALIB, HELD_OUT = 600, 200, 200  # images: the encoder takes 7-35 ms each on this CPU


# -- statistics ------------------------------------------------------------------------


def test_ledoit_wolf_shrinks_little_with_many_samples_and_stays_invertible_with_few():
    g = torch.Generator().manual_seed(0)
    scale = torch.linspace(0.5, 3.0, 20, dtype=torch.float64)
    many = torch.randn(5000, 20, generator=g, dtype=torch.float64) * scale
    mean, cov, s = ledoit_wolf(many)
    assert s < 0.05
    assert torch.allclose(cov.diagonal().sqrt(), scale, rtol=0.08)
    few = torch.randn(30, 100, generator=g, dtype=torch.float64)
    _, cov_few, s_few = ledoit_wolf(few)
    sample = torch.cov(few.T, correction=0)
    assert torch.linalg.matrix_rank(sample) < 100  # the plain estimate is singular
    assert torch.linalg.eigvalsh(cov_few).min() > 0 and 0 < s_few <= 1
    with pytest.raises(DomainError):
        ledoit_wolf(few[:1])


def test_mahalanobis_of_standard_normal_codes_is_about_sqrt_dimension():
    g = torch.Generator().manual_seed(1)
    fit = torch.randn(4000, 4, 8, generator=g)
    model = LatentGaussian.fit(fit)
    assert model.latent_shape == (4, 8) and model.n_fit == 4000
    scores = model.score(torch.randn(2000, 4, 8, generator=g))
    assert scores.mean().item() == pytest.approx(32**0.5, rel=0.05)
    far = model.score(torch.full((1, 4, 8), 3.0))
    assert far.item() == pytest.approx(3.0 * 32**0.5, rel=0.1)
    assert latent_features(fit, "layer_mean").shape == (4000, 8)
    with pytest.raises(DomainError):
        model.score(torch.randn(2, 3, 8))


def test_fidelity_reuses_the_evaluation_metrics():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    b = (a + 0.1 * torch.randn(3, 3, 32, 32, generator=g)).clamp(-1, 1)
    f, ref = fidelity(b, a), recon_metrics(b, a)
    assert torch.equal(f["psnr"], ref["psnr"]) and torch.equal(f["ssim"], ref["ssim"])
    with pytest.raises(DomainError):
        fidelity(a, a[:, :, :16])


# -- the demo bundle -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    inv = Inverter.from_path(DEMO, "cpu", batch_size=400)

    def encode(images) -> torch.Tensor:
        with torch.inference_mode():
            x = inv.preprocess(images)
            return torch.cat(
                [
                    inv.encoder(x[i : i + 400]).wplus + inv.latent_avg
                    for i in range(0, x.shape[0], 400)
                ]
            )

    # `val` is held out of the bundle's training; the official test split is held out
    # of everything and plays the part of new in-domain uploads.
    val, _ = load_fashion_mnist("val", limit=FIT + CALIB)
    test, _ = load_fashion_mnist("test", limit=HELD_OUT)
    calib = inv.invert(val[FIT:])
    return {
        "inverter": inv,
        "encode": encode,
        "fit": encode(val[:FIT]),
        "calib": calib,
        "calib_target": inv.preprocess(val[FIT:]),
        "test": encode(test),
    }


@pytest.fixture(scope="module")
def gate(demo) -> DomainGate:
    return DomainGate.calibrate(
        demo["fit"],
        demo["calib"].wplus,
        calib_reconstruction=demo["calib"].reconstruction,
        calib_target=demo["calib_target"],
        quantile=0.99,
        domain="Fashion-MNIST items, grey on black",
        calibration=f"fashion-mnist:val[{FIT}:{FIT + CALIB}]",
    )


@pytest.mark.slow
def test_demo_gate_flags_out_of_domain_inputs_and_passes_held_out_items(demo, gate):
    th = gate.thresholds
    assert th.n_calibration == CALIB and th.ood_max > 0
    assert th.psnr_min is not None and th.ssim_min is not None
    held_out = gate.model.score(demo["test"])
    flagged_in = float((held_out > th.ood_max).float().mean())
    assert flagged_in <= 0.05, flagged_in
    probes = out_of_domain_probes()
    assert set(probes) == {"noise", "text", "photo"}
    for kind, images in probes.items():
        scores = gate.model.score(demo["encode"](images))
        assert (scores > th.ood_max).all(), (kind, scores, th.ood_max)
        assert scores.min() > 1.5 * th.ood_max, (kind, scores, th.ood_max)


@pytest.mark.slow
def test_demo_reports_explain_in_plain_words(demo, gate):
    inv = demo["inverter"]
    portrait = out_of_domain_probes()["photo"][:1]
    bad = inv.invert(portrait)
    good = demo["calib"][:1]
    reports = gate.assess(
        torch.cat([good.wplus, bad.wplus]),
        torch.cat([good.reconstruction, bad.reconstruction]),
        torch.cat([demo["calib_target"][:1], inv.preprocess(portrait)]),
    )
    ok, flagged = reports
    assert not flagged.in_domain and "ood" in flagged.reasons
    assert "outside what the model can represent" in flagged.explanation
    assert (
        "Fashion-MNIST" in flagged.explanation and f"{flagged.ood_score:.1f}" in flagged.explanation
    )
    assert flagged.psnr is not None and flagged.ssim is not None
    if ok.in_domain:
        assert ok.reasons == [] and "looks like" in ok.explanation
    assert '"in_domain": false' in reports_to_json(reports)


def test_gate_round_trips_through_a_file(tmp_path):
    g = torch.Generator().manual_seed(3)
    gate = DomainGate.calibrate(
        torch.randn(300, 2, 8, generator=g),
        torch.randn(100, 2, 8, generator=g),
        quantile=0.95,
        domain="toy",
    )
    path = tmp_path / "domain.safetensors"
    gate.save(path)
    back = DomainGate.load(path)
    assert back.thresholds == gate.thresholds and back.domain == "toy"
    assert back.metadata()["thresholds"]["ood_max"] == gate.thresholds.ood_max
    probe = torch.randn(10, 2, 8, generator=g)
    assert torch.allclose(back.model.score(probe), gate.model.score(probe), rtol=1e-5)
    # a bundle manifest can carry the thresholds alone
    assert DomainThresholds.from_dict(gate.thresholds.to_dict()) == gate.thresholds
    with pytest.raises(DomainError):
        DomainThresholds.from_dict({"ood_max": -1})
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DomainError):
        DomainGate.load(tmp_path / "broken.safetensors")
