"""Domain gate primitives: can this model represent this photo?

Why: a generator represents only its training domain (aligned faces, a catalogue item
on black...). A photo outside it still "succeeds" -- the encoder always returns some
latent -- but the result is useless, and nobody is told. Two measurements catch it:

* **Reconstruction fidelity** on the aligned crop: PSNR and SSIM of the model's
  reconstruction against the crop (the project's own metrics,
  :func:`inversion.evaluate.recon_metrics`). Low fidelity: the model cannot draw it.
* **Latent out-of-distribution score**: the Mahalanobis distance of the encoder's W+
  code to the W+ codes of in-domain images. The encoder maps what it knows to a compact
  region; unfamiliar inputs land elsewhere even when the reconstruction happens to look
  passable (a dark noise image reconstructs to a dark blob). The distribution is a
  Gaussian with mean ``mu`` and a Ledoit-Wolf shrinkage covariance (Ledoit & Wolf 2004:
  ``(1 - s) S + s (tr S / p) I`` with the shrinkage ``s`` that minimises the expected
  Frobenius error; well conditioned even with fewer samples than dimensions). Features
  are the flattened W+ codes (``"flat"``) or the per-layer codes averaged
  (``"layer_mean"``, for large n_latent x style_dim).

* **Crop statistics** the model's input no longer shows (:func:`crop_statistics`, on the
  aligned crop *before* the bundle's colour mode): ``chroma``, the mean per-pixel
  spread of R, G, B (0 for a grey photo; a greyscale model cannot draw colour, and the
  grey conversion hides it from the two tests above), and ``border``, the spread of the
  crop's outer ring (the alignment margin: background by construction for ``object``
  alignment, so a busy ring means the photo is not an item on a plain background).
  Measured on catalogue canvases, these two catch most of the portraits, scenes and
  drawn faces that the latent score and PSNR let through (docs/quality.md).

Thresholds are calibrated on *held-out* in-domain images (not those the Gaussian was
fitted on): the OOD threshold is the ``quantile`` (default 0.99) of their scores, the
fidelity thresholds the ``1 - quantile`` quantiles of their PSNR and SSIM, the crop
statistics' thresholds the ``quantile`` of theirs (never below a small floor: a grey
calibration set has chroma 0); so about 1 % of in-domain photos are flagged by each test
by construction. Everything is serialisable:
:meth:`DomainGate.save` writes one safetensors file (mean, precision) whose metadata
holds the thresholds as JSON, for a model bundle to ship.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from inversion.errors import InversionError
from inversion.evaluate import recon_metrics

__all__ = [
    "DomainError",
    "LatentGaussian",
    "DomainThresholds",
    "DomainReport",
    "DomainGate",
    "fidelity",
    "crop_statistics",
    "ledoit_wolf",
    "latent_features",
    "reports_to_json",
    "out_of_domain_probes",
    "measure_demo",
]

Pooling = Literal["flat", "layer_mean"]
FORMAT = "styleledger.domain/1"


class DomainError(InversionError, ValueError):
    """A domain model or its thresholds cannot be fitted, read or applied."""


def fidelity(reconstruction: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-image PSNR (dB) and SSIM of (B, 3, H, W) images in [-1, 1] (sizes must match)."""
    if reconstruction.shape != target.shape:
        raise DomainError(
            f"reconstruction {tuple(reconstruction.shape)} and target "
            f"{tuple(target.shape)} differ in shape"
        )
    m = recon_metrics(reconstruction.detach().cpu(), target.detach().cpu())
    return {"psnr": m["psnr"], "ssim": m["ssim"]}


CHROMA_FLOOR = 3.0  # grey levels: JPEG and resampling leave about 1 on grey photos
BORDER_FLOOR = 4.0  # grey levels: sensor noise on a plain background


def crop_statistics(crops: Tensor) -> dict[str, Tensor]:
    """Per-image ``chroma`` and ``border`` (grey levels, 0-255) of aligned crops
    (B, 3, H, W) in [-1, 1], taken before any colour conversion.

    ``chroma``: mean over pixels of max(R, G, B) - min(R, G, B). ``border``: standard
    deviation of the luma of the outer ring (``max(1, H // 16)`` pixels wide: the
    alignment's margin).
    """
    if crops.ndim != 4 or crops.shape[1] != 3:
        raise DomainError(f"expected crops (B, 3, H, W), got {tuple(crops.shape)}")
    x = (crops.detach().to("cpu", torch.float64) + 1) * 127.5
    chroma = (x.max(1).values - x.min(1).values).flatten(1).mean(1)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    h, w = luma.shape[-2:]
    r = max(1, min(h, w) // 16)
    ring = torch.ones(h, w, dtype=torch.bool)
    ring[r : h - r, r : w - r] = False
    border = luma[:, ring].std(1)
    return {"chroma": chroma.float(), "border": border.float()}


def latent_features(wplus: Tensor, pooling: Pooling = "flat") -> Tensor:
    """(B, n_latent, style_dim) W+ codes -> (B, D) float64 features."""
    if wplus.ndim != 3:
        raise DomainError(f"expected W+ codes (B, n_latent, style_dim), got {tuple(wplus.shape)}")
    w = wplus.detach().to("cpu", torch.float64)
    if pooling == "flat":
        return w.flatten(1)
    if pooling == "layer_mean":
        return w.mean(1)
    raise DomainError(f"unknown pooling {pooling!r} (use 'flat' or 'layer_mean')")


def ledoit_wolf(x: Tensor) -> tuple[Tensor, Tensor, float]:
    """(mean, shrunk covariance, shrinkage) of samples (n, p), Ledoit-Wolf 2004."""
    n, p = x.shape
    if n < 2:
        raise DomainError(f"need at least 2 samples to fit a covariance, got {n}")
    x = x.double()
    mean = x.mean(0)
    xc = x - mean
    s = xc.T @ xc / n
    mu = float(torch.trace(s)) / p
    target_dist = float(((s - mu * torch.eye(p, dtype=s.dtype)) ** 2).sum())
    if target_dist <= 0:
        return mean, s, 0.0
    row_sq = (xc**2).sum(1)
    beta = float((row_sq**2).sum() - n * (s**2).sum()) / n**2
    shrinkage = min(max(beta, 0.0), target_dist) / target_dist
    cov = (1 - shrinkage) * s + shrinkage * mu * torch.eye(p, dtype=s.dtype)
    return mean, cov, shrinkage


@dataclass
class LatentGaussian:
    """Mean and precision of in-domain W+ features; scores are Mahalanobis distances."""

    mean: Tensor
    precision: Tensor
    pooling: Pooling = "flat"
    shrinkage: float = 0.0
    n_fit: int = 0
    latent_shape: tuple[int, int] = (0, 0)

    @classmethod
    def fit(cls, wplus: Tensor, pooling: Pooling = "flat") -> LatentGaussian:
        feats = latent_features(wplus, pooling)
        if not torch.isfinite(feats).all():
            raise DomainError("W+ codes contain non-finite values")
        mean, cov, shrinkage = ledoit_wolf(feats)
        precision = torch.linalg.inv(cov)
        precision = (precision + precision.T) / 2
        return cls(
            mean,
            precision,
            pooling,
            shrinkage,
            int(feats.shape[0]),
            (int(wplus.shape[1]), int(wplus.shape[2])),
        )

    def score(self, wplus: Tensor) -> Tensor:
        """(B,) Mahalanobis distances of W+ codes (B, n_latent, style_dim)."""
        if self.latent_shape != (0, 0) and tuple(wplus.shape[1:]) != self.latent_shape:
            raise DomainError(
                f"W+ codes of shape {tuple(wplus.shape[1:])} do not fit a domain "
                f"model of {self.latent_shape}"
            )
        d = latent_features(wplus, self.pooling) - self.mean
        return ((d @ self.precision.double()) * d).sum(1).clamp_min(0).sqrt().float()


@dataclass
class DomainThresholds:
    """Calibrated limits: flag above ``ood_max``, ``chroma_max`` or ``border_max``, below
    ``psnr_min`` or ``ssim_min`` (a limit that is None is not checked)."""

    ood_max: float
    psnr_min: float | None = None
    ssim_min: float | None = None
    chroma_max: float | None = None  # None: not checked (gates calibrated before it existed)
    border_max: float | None = None
    quantile: float = 0.99
    n_calibration: int = 0
    calibration: str = ""  # what the calibration images were (for the model card)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainThresholds:
        try:
            out = cls(**{k: data[k] for k in data if k in cls.__dataclass_fields__})
            float(out.ood_max)
        except (TypeError, ValueError) as exc:
            raise DomainError(f"malformed domain thresholds: {exc}") from None
        if not math.isfinite(out.ood_max) or out.ood_max <= 0:
            raise DomainError(f"ood_max must be a positive number, got {out.ood_max!r}")
        return out


@dataclass
class DomainReport:
    """The gate's verdict on one photo, with the numbers and a plain-language reason."""

    in_domain: bool
    ood_score: float
    ood_max: float
    psnr: float | None = None
    psnr_min: float | None = None
    ssim: float | None = None
    ssim_min: float | None = None
    chroma: float | None = None
    chroma_max: float | None = None
    border: float | None = None
    border_max: float | None = None
    reasons: list[str] = field(default_factory=list)
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _explain(r: DomainReport, domain: str) -> tuple[list[str], str]:
    reasons = []
    if r.ood_score > r.ood_max:
        reasons.append("ood")
    if r.psnr is not None and r.psnr_min is not None and r.psnr < r.psnr_min:
        reasons.append("psnr")
    if r.ssim is not None and r.ssim_min is not None and r.ssim < r.ssim_min:
        reasons.append("ssim")
    if r.chroma is not None and r.chroma_max is not None and r.chroma > r.chroma_max:
        reasons.append("colour")
    if r.border is not None and r.border_max is not None and r.border > r.border_max:
        reasons.append("background")
    what = f" ({domain})" if domain else ""
    if not reasons:
        return reasons, (
            f"This photo looks like the images the model was trained on{what}: "
            f"unusualness {r.ood_score:.1f} (limit {r.ood_max:.1f})"
            + (f", reconstruction {r.psnr:.1f} dB" if r.psnr is not None else "")
            + ". The edit should be reliable."
        )
    parts = []
    if "ood" in reasons:
        parts.append(
            f"it is unlike the images the model was trained on{what} (unusualness "
            f"{r.ood_score:.1f}, limit {r.ood_max:.1f})"
        )
    if "psnr" in reasons or "ssim" in reasons:
        nums = []
        if r.psnr is not None:
            nums.append(f"PSNR {r.psnr:.1f} dB, limit {r.psnr_min:.1f}")
        if r.ssim is not None:
            nums.append(f"SSIM {r.ssim:.2f}, limit {r.ssim_min:.2f}")
        parts.append("the model cannot redraw it faithfully (" + "; ".join(nums) + ")")
    if "colour" in reasons:
        parts.append(
            f"it is in colour and the model works in greyscale (colourfulness "
            f"{r.chroma:.1f}, limit {r.chroma_max:.1f})"
        )
    if "background" in reasons:
        parts.append(
            f"the subject is not on a plain background (background variation "
            f"{r.border:.1f}, limit {r.border_max:.1f})"
        )
    return reasons, (
        "This photo is outside what the model can represent: "
        + " and ".join(parts)
        + ". The result may not look like the original; review it before use."
    )


@dataclass
class DomainGate:
    """A fitted :class:`LatentGaussian` and its :class:`DomainThresholds`."""

    model: LatentGaussian
    thresholds: DomainThresholds
    domain: str = ""  # e.g. "Fashion-MNIST items, grey on black, 32 px"

    @classmethod
    def calibrate(
        cls,
        fit_wplus: Tensor,
        calib_wplus: Tensor,
        *,
        calib_reconstruction: Tensor | None = None,
        calib_target: Tensor | None = None,
        calib_crops: Tensor | None = None,
        quantile: float = 0.99,
        pooling: Pooling = "flat",
        domain: str = "",
        calibration: str = "",
        check_colour: bool = True,
    ) -> DomainGate:
        """Fit on ``fit_wplus``; set thresholds from held-out ``calib_*``.

        ``calib_crops``: the held-out aligned crops before the colour mode (for
        :func:`crop_statistics`); ``check_colour`` False leaves colour unchecked (an RGB
        model, whose calibration photos are in colour anyway)."""
        if not 0.5 <= quantile < 1:
            raise DomainError(f"quantile must be in [0.5, 1), got {quantile!r}")
        model = LatentGaussian.fit(fit_wplus, pooling)
        scores = model.score(calib_wplus).double()
        th = DomainThresholds(
            ood_max=float(torch.quantile(scores, quantile)),
            quantile=quantile,
            n_calibration=int(scores.shape[0]),
            calibration=calibration,
        )
        if calib_reconstruction is not None and calib_target is not None:
            f = fidelity(calib_reconstruction, calib_target)
            th.psnr_min = float(torch.quantile(f["psnr"].double(), 1 - quantile))
            th.ssim_min = float(torch.quantile(f["ssim"].double(), 1 - quantile))
        if calib_crops is not None:
            st = crop_statistics(calib_crops)
            border = float(torch.quantile(st["border"].double(), quantile))
            th.border_max = max(border, BORDER_FLOOR)
            if check_colour:
                chroma = float(torch.quantile(st["chroma"].double(), quantile))
                th.chroma_max = max(chroma, CHROMA_FLOOR)
        return cls(model, th, domain)

    def assess(
        self,
        wplus: Tensor,
        reconstruction: Tensor | None = None,
        target: Tensor | None = None,
        crops: Tensor | None = None,
    ) -> list[DomainReport]:
        """One report per image. Fidelity is judged only when both images are given, the
        crop statistics only when ``crops`` (before the colour mode) are."""
        scores = self.model.score(wplus)
        fid = (
            fidelity(reconstruction, target)
            if (reconstruction is not None and target is not None)
            else None
        )
        stats = crop_statistics(crops) if crops is not None else None
        th = self.thresholds
        reports = []
        for i in range(scores.shape[0]):
            r = DomainReport(
                in_domain=True,
                ood_score=round(float(scores[i]), 4),
                ood_max=th.ood_max,
                psnr=None if fid is None else round(float(fid["psnr"][i]), 4),
                psnr_min=th.psnr_min,
                ssim=None if fid is None else round(float(fid["ssim"][i]), 4),
                ssim_min=th.ssim_min,
                chroma=None if stats is None else round(float(stats["chroma"][i]), 3),
                chroma_max=th.chroma_max,
                border=None if stats is None else round(float(stats["border"][i]), 3),
                border_max=th.border_max,
            )
            r.reasons, r.explanation = _explain(r, self.domain)
            r.in_domain = not r.reasons
            reports.append(r)
        return reports

    # -- storage ---------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """JSON-safe description (thresholds, pooling, shapes): what a manifest shows."""
        return {
            "format": FORMAT,
            "domain": self.domain,
            "pooling": self.model.pooling,
            "shrinkage": self.model.shrinkage,
            "n_fit": self.model.n_fit,
            "latent_shape": list(self.model.latent_shape),
            "thresholds": self.thresholds.to_dict(),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        from safetensors.torch import save_file

        save_file(
            {
                "mean": self.model.mean.float().contiguous(),
                "precision": self.model.precision.float().contiguous(),
            },
            str(path),
            metadata={"domain_gate": json.dumps(self.metadata(), sort_keys=True)},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DomainGate:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["domain_gate"])
                mean, precision = f.get_tensor("mean"), f.get_tensor("precision")
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
            raise DomainError(f"cannot read domain gate {str(path)!r}: {exc}") from None
        return cls.from_parts(mean, precision, meta)

    @classmethod
    def from_parts(cls, mean: Tensor, precision: Tensor, meta: Mapping[str, Any]) -> DomainGate:
        if meta.get("format") != FORMAT:
            raise DomainError(f"unknown domain gate format {meta.get('format')!r}")
        p = mean.shape[0]
        if mean.ndim != 1 or tuple(precision.shape) != (p, p):
            raise DomainError(
                f"mean {tuple(mean.shape)} and precision {tuple(precision.shape)} "
                "do not fit together"
            )
        model = LatentGaussian(
            mean.double(),
            precision.double(),
            meta["pooling"],
            float(meta.get("shrinkage", 0.0)),
            int(meta.get("n_fit", 0)),
            tuple(meta.get("latent_shape", (0, 0))),
        )
        return cls(
            model, DomainThresholds.from_dict(meta["thresholds"]), str(meta.get("domain", ""))
        )


def reports_to_json(reports: Sequence[DomainReport]) -> str:
    """Reports as a JSON list (what a job stores and the API returns)."""
    return json.dumps([r.to_dict() for r in reports], sort_keys=True)


# -- measurement on a bundle: python -m inversion.domain --bundle DIR -----------------


def out_of_domain_probes(seed: int = 0) -> dict[str, list[Any]]:
    """Generated out-of-domain images (PIL): colour and grey noise, text pages, and the
    package-shipped portrait (matplotlib's ``grace_hopper.jpg``) when matplotlib is there.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    noise = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(8)]
    noise += [
        Image.fromarray(np.repeat(rng.integers(0, 256, (64, 64, 1), dtype=np.uint8), 3, 2))
        for _ in range(4)
    ]
    texts = []
    for i in range(6):
        im = Image.new("RGB", (128, 128), (255, 255, 255))
        draw = ImageDraw.Draw(im)
        for line in range(6):
            draw.text((4, 4 + 20 * line), f"Invoice {i} line {line}: 12.{line}0", fill=(0, 0, 0))
        texts.append(im)
    probes: dict[str, list[Any]] = {"noise": noise, "text": texts}
    try:
        import matplotlib
    except ImportError:
        return probes
    from pathlib import Path

    portrait = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    probes["photo"] = [
        portrait.convert("RGB"),
        portrait.convert("L").convert("RGB"),
        portrait.convert("RGB").crop((100, 150, 400, 450)),
    ]
    return probes


def measure_demo(
    bundle: str | os.PathLike[str],
    fit: int,
    calib: int,
    held_out: int,
    quantile: float = 0.99,
    save: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fit on Fashion-MNIST ``val[:fit]``, calibrate on ``val[fit:fit+calib]``, and report
    the flagged fraction of ``test[:held_out]`` and of :func:`out_of_domain_probes`."""
    from inversion.inverter import Inverter
    from inversion.training.data import load_fashion_mnist

    inv = Inverter.from_path(bundle, "cpu", batch_size=256)

    def encode(images: Any) -> Tensor:
        with torch.inference_mode():
            x = inv.preprocess(images)
            return torch.cat(
                [
                    inv.encoder(x[i : i + 256]).wplus + inv.latent_avg
                    for i in range(0, x.shape[0], 256)
                ]
            )

    val, _ = load_fashion_mnist("val", limit=fit + calib)
    test, _ = load_fashion_mnist("test", limit=held_out)
    cal = inv.invert(val[fit:])
    gate = DomainGate.calibrate(
        encode(val[:fit]),
        cal.wplus,
        calib_reconstruction=cal.reconstruction,
        calib_target=inv.preprocess(val[fit:]),
        quantile=quantile,
        calibration=f"fashion-mnist:val[{fit}:{fit + calib}]",
    )
    if save is not None:
        gate.save(save)
    th = gate.thresholds.ood_max
    held = gate.model.score(encode(test))
    out: dict[str, Any] = {
        "gate": gate.metadata(),
        "held_out_flagged": round(float((held > th).float().mean()), 4),
        "held_out_median_score": round(float(held.median()), 2),
        "out_of_domain": {},
    }
    total = flagged = 0
    for kind, images in out_of_domain_probes().items():
        scores = gate.model.score(encode(images))
        total += len(images)
        flagged += int((scores > th).sum())
        out["out_of_domain"][kind] = {
            "n": len(images),
            "flagged": round(float((scores > th).float().mean()), 4),
            "min_score": round(float(scores.min()), 2),
        }
    out["out_of_domain_flagged"] = round(flagged / max(total, 1), 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Fit and calibrate a bundle's domain gate on Fashion-MNIST; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m inversion.domain", description=main.__doc__)
    parser.add_argument("--bundle", default="inversion/bundles/demo")
    parser.add_argument("--fit", type=int, default=3000)
    parser.add_argument("--calib", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--quantile", type=float, default=0.99)
    parser.add_argument("--save", help="write the fitted gate (safetensors) here")
    args = parser.parse_args(argv)
    result = measure_demo(
        args.bundle, args.fit, args.calib, args.held_out, args.quantile, args.save
    )
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
