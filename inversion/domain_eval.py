"""Measure a domain gate the way the platform uses it: photo -> alignment -> gate.

Why: a gate calibrated on bare 32-px Fashion-MNIST items flagged about half of the
in-domain *catalogue photos* the pipeline feeds it (an item on a large dark canvas,
off-centre, with noise and JPEG): the aligned crop of such a photo differs from a bare
item in background tone and noise, and the gate saw that. What counts is the crop the
model gets in a job, so calibration and measurement both go through the job's own
preprocessing (:func:`inversion.bundle_domain.pipeline_crop`: the bundle's alignment,
then its colour mode).

``python -m inversion.domain_eval --bundle inversion/bundles/demo`` builds

* in-domain catalogue canvases (:func:`inversion.align.synthetic.random_canvas`, the
  demo's colour domain): ``--fit`` + ``--calib`` from the validation split (the gate is
  fitted and calibrated on these), ``--held-out`` from the test split (measured);
* out-of-domain photos (:func:`out_of_domain_set`): package-shipped photos (portrait,
  product shot, logo) and crops of them, generated scenes, drawn faces, noise, text
  pages;

and reports, for each gate, the fraction of held-out canvases flagged and of
out-of-domain photos caught (stopped at alignment -- ``object`` alignment finds no
subject, the job fails ``no_subject`` -- or flagged by the gate), next to the trivial
baselines: a gate that passes everything, and gates on one statistic (PSNR only, the
latent score only), and the gate calibrated on bare items (the previous calibration).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "in_domain_canvases",
    "out_of_domain_set",
    "evaluate_gates",
    "evaluate_shipped",
    "main",
]


def in_domain_canvases(n: int, split: str, seed: int, offset: int = 0, kind: str = "mixed"):
    """``n`` in-domain catalogue photos of Fashion-MNIST ``split`` items
    ``offset:offset+n`` (``val`` = the 5,000 training-file items held out of training,
    or ``test``). ``kind``: ``canvas`` -- 512x512 canvases as the pipeline measurement
    makes them (:func:`inversion.align.synthetic.random_canvas`), ``photo`` -- photos of
    random size (:func:`inversion.align.synthetic.catalogue_photo`), ``mixed`` --
    alternately one and the other (what the gate is calibrated on)."""
    from inversion.align.synthetic import catalogue_photo, random_canvas
    from inversion.training.data import FASHION_FILES, TRAIN_SPLIT, ensure_fashion_mnist, read_idx

    if split == "val":
        raw = read_idx(ensure_fashion_mnist() / FASHION_FILES["train"][0])[TRAIN_SPLIT:]
    elif split == "test":
        raw = read_idx(ensure_fashion_mnist() / FASHION_FILES["test"][0])
    else:
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    if kind not in ("canvas", "photo", "mixed"):
        raise ValueError(f"kind must be 'canvas', 'photo' or 'mixed', got {kind!r}")
    if offset + n > raw.shape[0]:
        raise ValueError(f"{split} has {raw.shape[0]} items, asked for {offset}:{offset + n}")
    rng = np.random.default_rng(seed)
    out = []
    for k, i in enumerate(range(offset, offset + n)):
        use_canvas = kind == "canvas" or (kind == "mixed" and k % 2 == 1)
        out.append(random_canvas(raw[i], rng)[0] if use_canvas else catalogue_photo(raw[i], rng))
    return out


def _scene(rng: np.random.Generator, size: int = 384) -> Any:
    """A generated outdoor-like scene: sky gradient, ground, sun, houses, trees."""
    from PIL import Image, ImageDraw, ImageFilter

    sky = np.array(rng.integers(60, 220, 3))
    ground = np.array(rng.integers(20, 160, 3))
    horizon = int(rng.uniform(0.4, 0.75) * size)
    arr = np.zeros((size, size, 3))
    ramp = np.linspace(0.6, 1.1, horizon)[:, None]
    arr[:horizon] = (sky[None, None, :] * ramp[..., None]).clip(0, 255)
    arr[horizon:] = ground
    im = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(im)
    r = int(rng.integers(15, 40))
    cx, cy = int(rng.integers(r, size - r)), int(rng.integers(r, max(r + 1, horizon - r)))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 230, 120))
    for _ in range(int(rng.integers(2, 6))):
        w, h = int(rng.integers(30, 90)), int(rng.integers(30, 80))
        x = int(rng.integers(0, size - w))
        col = tuple(int(c) for c in rng.integers(40, 240, 3))
        d.rectangle((x, horizon - h, x + w, horizon + 5), fill=col)
        d.polygon(
            [(x - 5, horizon - h), (x + w + 5, horizon - h), (x + w // 2, horizon - h - 25)],
            fill=tuple(int(c) for c in rng.integers(60, 200, 3)),
        )
    for _ in range(int(rng.integers(2, 8))):
        x = int(rng.integers(0, size))
        d.ellipse(
            (x - 18, horizon - 60, x + 18, horizon - 10), fill=(30, int(rng.integers(90, 160)), 40)
        )
    im = im.filter(ImageFilter.GaussianBlur(0.8))
    noisy = np.asarray(im, dtype=np.float64) + rng.normal(0, 4, (size, size, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def _drawn_face(rng: np.random.Generator, size: int = 256) -> Any:
    """A drawn face (skin oval, eyes, brows, nose, mouth, hair) on a random background."""
    from PIL import Image, ImageDraw, ImageFilter

    bg = tuple(int(c) for c in rng.integers(0, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    skin = tuple(int(c) for c in (np.array([225, 185, 150]) * rng.uniform(0.45, 1.1)).clip(0, 255))
    hair = tuple(int(c) for c in rng.integers(0, 120, 3))
    m = size // 8
    d.ellipse((m, m // 2, size - m, size - m), fill=hair)
    d.ellipse((m + 15, m, size - m - 15, size - m + 5), fill=skin)
    ey = size // 2 - 10
    for ex in (size // 2 - 40, size // 2 + 40):
        d.ellipse((ex - 14, ey - 8, ex + 14, ey + 8), fill=(245, 245, 245))
        d.ellipse((ex - 6, ey - 6, ex + 6, ey + 6), fill=(40, 30, 20))
        d.line((ex - 16, ey - 20, ex + 16, ey - 22), fill=hair, width=5)
    d.line((size // 2, ey + 5, size // 2 - 8, ey + 40), fill=(150, 100, 80), width=3)
    d.arc((size // 2 - 35, ey + 35, size // 2 + 35, ey + 75), 20, 160, fill=(160, 40, 50), width=5)
    return im.filter(ImageFilter.GaussianBlur(1.0))


def out_of_domain_set(seed: int = 0) -> dict[str, list[Any]]:
    """Out-of-domain photos by kind (PIL, RGB), built from package-shipped images and
    generated ones: ``portrait`` (matplotlib's grace_hopper.jpg: whole, grey, crops,
    mirrored, small), ``photo`` (matplotlib's product shot and logo, generated scenes),
    ``face`` (drawn faces), ``noise`` (colour, grey and smooth noise), ``text`` (dark on
    light and light on dark pages)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFilter, ImageOps

    rng = np.random.default_rng(seed)
    data = Path(matplotlib.get_data_path()) / "sample_data"
    hopper = Image.open(data / "grace_hopper.jpg").convert("RGB")
    w, h = hopper.size
    portrait = [
        hopper,
        hopper.convert("L").convert("RGB"),
        ImageOps.mirror(hopper),
        hopper.resize((w // 3, h // 3)),
    ]
    for _ in range(8):
        s = int(rng.uniform(0.35, 0.8) * min(w, h))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        portrait.append(hopper.crop((x, y, x + s, y + s)))
    pack = Image.open(data / "Minduka_Present_Blue_Pack.png").convert("RGB")
    logo = Image.open(data / "logo2.png").convert("RGB")
    photo = [pack, pack.convert("L").convert("RGB"), logo, ImageOps.invert(logo)]
    photo += [_scene(rng) for _ in range(12)]
    face = [_drawn_face(rng) for _ in range(10)]
    noise = [Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)) for _ in range(6)]
    noise += [
        Image.fromarray(np.repeat(rng.integers(0, 256, (96, 96, 1), dtype=np.uint8), 3, 2))
        for _ in range(4)
    ]
    noise += [
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).filter(
            ImageFilter.GaussianBlur(float(rng.uniform(2, 6)))
        )
        for _ in range(4)
    ]
    text = []
    for i in range(10):
        dark = i % 2 == 1
        page = Image.new("RGB", (256, 256), (12, 12, 12) if dark else (255, 255, 255))
        draw = ImageDraw.Draw(page)
        for line in range(10):
            draw.text(
                (8, 8 + 24 * line),
                f"Invoice {i} line {line}: total 12.{line}0 EUR",
                fill=(235, 235, 235) if dark else (0, 0, 0),
            )
        text.append(page)
    return {"portrait": portrait, "photo": photo, "face": face, "noise": noise, "text": text}


class _Encoded:
    """W+ codes, reconstructions and targets of photos run through the job's preprocessing;
    ``stopped`` marks photos that alignment refused (None rows)."""

    def __init__(self, inverter: Any, domain: Any, photos: Sequence[Any], batch: int = 128):
        from inversion.align import AlignmentError
        from inversion.bundle_domain import pipeline_crop
        from inversion.preprocess import image_to_tensor

        crops, aligned, self.stopped = [], [], []
        for p in photos:
            try:
                _, crop, colour = pipeline_crop(p, domain)
                crops.append(crop)
                aligned.append(colour)
                self.stopped.append(False)
            except AlignmentError:
                self.stopped.append(True)
        self.n = len(photos)
        if not crops:
            self.wplus = self.reconstruction = self.target = self.aligned = None
            return
        parts = [inverter.invert(crops[i : i + batch]) for i in range(0, len(crops), batch)]
        self.wplus = torch.cat([p.wplus for p in parts])
        self.reconstruction = torch.cat([p.reconstruction for p in parts])
        self.target = image_to_tensor(crops, inverter.output_size)
        self.aligned = image_to_tensor(aligned, inverter.output_size)


Flagger = Callable[[_Encoded], list[bool]]


def _encode_judged_sets(
    inv: Any, domain: Any, held_out: int, seed: int, log: Any, t0: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The held-out catalogue photos (half canvases, half photos of the test split) and the
    out-of-domain set, encoded once: what every gate variant is judged on."""
    half = held_out // 2
    held = {
        "canvas": _Encoded(inv, domain, in_domain_canvases(half, "test", seed + 2, kind="canvas")),
        "photo": _Encoded(
            inv,
            domain,
            in_domain_canvases(held_out - half, "test", seed + 3, offset=half, kind="photo"),
        ),
    }
    log(f"held-out catalogue photos encoded ({time.time() - t0:.0f} s)")
    ood = {kind: _Encoded(inv, domain, photos) for kind, photos in out_of_domain_set(seed).items()}
    return held, ood


def _rate(enc: _Encoded, flags: list[bool]) -> tuple[float, int]:
    """(fraction caught = stopped or flagged, count) over all photos of ``enc``."""
    it = iter(flags)
    caught = sum(1 for s in enc.stopped if s or next(it))
    return caught / max(enc.n, 1), caught


def evaluate_gates(
    bundle: str | Path,
    fit: int = 2000,
    calib: int = 500,
    held_out: int = 500,
    quantile: float = 0.99,
    seed: int = 0,
    log: Callable[[str], None] = print,
    other_quantiles: Sequence[float] = (),
) -> dict[str, Any]:
    from inversion.bundle_domain import BundleDomain
    from inversion.domain import DomainGate, fidelity
    from inversion.inverter import Inverter
    from inversion.training.data import load_fashion_mnist

    t0 = time.time()
    inv = Inverter.from_path(bundle, "cpu", batch_size=128)
    declared = inv.bundle.domain
    domain = (
        declared
        if declared.declared
        else BundleDomain(
            subject="product", align="object", resolution=inv.output_size, colour="grey"
        )
    )
    from inversion.bundle_domain import calibration_set, calibration_tensors

    cal_set = calibration_set("fashion-mnist", fit, calib, seed)
    tensors = calibration_tensors(inv, domain, cal_set)

    def calibrated(q: float) -> DomainGate:
        return DomainGate.calibrate(
            tensors["fit_wplus"],
            tensors["calib_wplus"],
            calib_reconstruction=tensors["calib_reconstruction"],
            calib_target=tensors["calib_target"],
            calib_crops=tensors["calib_crops"],
            check_colour=domain.colour == "grey",
            quantile=q,
            domain=domain.description or domain.subject,
            calibration=cal_set.name,
        )

    gate = calibrated(quantile)
    log(f"canvas-calibrated gate: {gate.thresholds.to_dict()} ({time.time() - t0:.0f} s)")

    # the previous calibration: bare items (val[:fit] fit, val[fit:fit+calib] thresholds)
    bare, _ = load_fashion_mnist("val", size=inv.input_size, limit=fit + calib)
    bare_cal = inv.invert(bare[fit:])
    bare_gate = DomainGate.calibrate(
        inv.invert(bare[:fit]).wplus,
        bare_cal.wplus,
        calib_reconstruction=bare_cal.reconstruction,
        calib_target=bare[fit:],
        quantile=quantile,
        calibration=f"fashion-mnist:val[{fit}:{fit + calib}] (bare items)",
    )
    th = gate.thresholds

    def gate_flags(g: DomainGate, crop_statistics: bool = True) -> Flagger:
        def flags(e: _Encoded) -> list[bool]:
            if e.wplus is None:
                return []
            crops = e.aligned if crop_statistics else None
            return [not r.in_domain for r in g.assess(e.wplus, e.reconstruction, e.target, crops)]

        return flags

    def psnr_only(e: _Encoded) -> list[bool]:
        if e.wplus is None:
            return []
        return (fidelity(e.reconstruction, e.target)["psnr"] < th.psnr_min).tolist()

    def latent_only(e: _Encoded) -> list[bool]:
        if e.wplus is None:
            return []
        return (gate.model.score(e.wplus) > th.ood_max).tolist()

    gates: dict[str, Flagger] = {
        "pass everything (alignment alone)": lambda e: (
            [False] * (0 if e.wplus is None else e.wplus.shape[0])
        ),
        "PSNR only": psnr_only,
        "latent score only": latent_only,
        "latent + PSNR + SSIM, calibrated on bare items (before)": gate_flags(bare_gate, False),
        "latent + PSNR + SSIM, calibrated on catalogue photos": gate_flags(gate, False),
        f"+ colour and background (the gate now, quantile {quantile})": gate_flags(gate),
    }
    for q in other_quantiles:
        gates[f"+ colour and background, quantile {q}"] = gate_flags(calibrated(q))
    half = held_out // 2  # canvases test[0:half], photos test[half:held_out]
    held, ood = _encode_judged_sets(inv, domain, held_out, seed, log, t0)
    n_ood = sum(e.n for e in ood.values())
    rows = {}
    for name, flagger in gates.items():
        in_counts = {kind: _rate(e, flagger(e))[1] for kind, e in held.items()}
        per_kind = {kind: _rate(e, flagger(e))[1] for kind, e in ood.items()}
        rows[name] = {
            "in_domain_flagged": round(sum(in_counts.values()) / held_out, 4),
            "in_domain_by_kind": in_counts,
            "out_of_domain_caught": round(sum(per_kind.values()) / n_ood, 4),
            "by_kind": per_kind,
        }
    return {
        "bundle": {"path": str(bundle), "version": inv.version},
        "domain": domain.manifest_dict(),
        "thresholds": th.to_dict(),
        "calibration": gate.thresholds.calibration,
        "held_out": f"fashion-mnist:test[0:{half}] as 512x512 canvases (seed {seed + 2}), "
        f"test[{half}:{held_out}] as photos of random size (seed {seed + 3})",
        "held_out_stopped_at_alignment": sum(sum(e.stopped) for e in held.values()),
        "out_of_domain": {
            kind: {"n": e.n, "stopped_at_alignment": sum(e.stopped)} for kind, e in ood.items()
        },
        "gates": rows,
        "wall_s": round(time.time() - t0, 1),
        "gate": gate,
    }


def evaluate_shipped(
    bundle: str | Path,
    held_out: int = 400,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure the gate the bundle *ships* (``domain_gate.safetensors``), calibrating
    nothing: the same held-out catalogue photos and out-of-domain set as
    :func:`evaluate_gates`, with the one-statistic baselines on the shipped thresholds.

    Why: :func:`evaluate_gates` re-fits a gate from the validation split, which measures
    the calibration *recipe* on the current encoder, not the file a worker loads. After
    the encoder changes, the figures quoted for the shipped gate must come from that
    file. Also reports how many held-out photos each test flags (``reasons``) and the
    held-out quantiles of each statistic, so a miss says which threshold to re-calibrate.
    """
    from inversion.domain import crop_statistics, fidelity
    from inversion.inverter import Inverter

    t0 = time.time()
    inv = Inverter.from_path(bundle, "cpu", batch_size=128)
    gate, domain = inv.bundle.domain_gate, inv.bundle.domain
    if gate is None or not domain.declared:
        raise ValueError(f"{bundle} ships no domain gate to measure")
    th = gate.thresholds
    log(f"shipped gate: {th.to_dict()}")
    half = held_out // 2  # canvases test[0:half], photos test[half:held_out]
    held, ood = _encode_judged_sets(inv, domain, held_out, seed, log, t0)
    n_ood = sum(e.n for e in ood.values())
    log(f"out-of-domain photos encoded ({time.time() - t0:.0f} s)")

    def reports(e: _Encoded, crop_statistics_on: bool = True) -> list[Any]:
        if e.wplus is None:
            return []
        crops = e.aligned if crop_statistics_on else None
        return gate.assess(e.wplus, e.reconstruction, e.target, crops)

    def only(*tests: str) -> Flagger:
        return lambda e: [any(t in r.reasons for t in tests) for r in reports(e)]

    gates: dict[str, Flagger] = {
        "pass everything (alignment alone)": lambda e: (
            [False] * (0 if e.wplus is None else e.wplus.shape[0])
        ),
        "PSNR only": only("psnr"),
        "latent score only": only("ood"),
        "latent + PSNR + SSIM": only("ood", "psnr", "ssim"),
        "the shipped gate (latent + PSNR + SSIM + colour + background)": lambda e: [
            not r.in_domain for r in reports(e)
        ],
    }
    rows = {}
    for name, flagger in gates.items():
        in_counts = {kind: _rate(e, flagger(e))[1] for kind, e in held.items()}
        per_kind = {kind: _rate(e, flagger(e))[1] for kind, e in ood.items()}
        rows[name] = {
            "in_domain_flagged": round(sum(in_counts.values()) / held_out, 4),
            "in_domain_by_kind": in_counts,
            "out_of_domain_caught": round(sum(per_kind.values()) / n_ood, 4),
            "by_kind": per_kind,
        }
    reasons: dict[str, int] = {}
    stats: dict[str, list[float]] = {"ood": [], "psnr": [], "ssim": [], "chroma": [], "border": []}
    for e in held.values():
        for r in reports(e):
            for t in r.reasons:
                reasons[t] = reasons.get(t, 0) + 1
        if e.wplus is not None:
            fid = fidelity(e.reconstruction, e.target)
            cs = crop_statistics(e.aligned)
            stats["ood"] += gate.model.score(e.wplus).tolist()
            stats["psnr"] += fid["psnr"].tolist()
            stats["ssim"] += fid["ssim"].tolist()
            stats["chroma"] += cs["chroma"].tolist()
            stats["border"] += cs["border"].tolist()
    # the held-out quantile each threshold would need for the flags to stay near 1 % each
    quantiles = {
        k: {
            q: round(float(np.quantile(v, q)), 4)
            for q in ((0.005, 0.01, 0.5) if k in ("psnr", "ssim") else (0.5, 0.99, 0.995))
        }
        for k, v in stats.items()
        if v
    }
    return {
        "bundle": {"path": str(bundle), "version": inv.version},
        "domain": domain.manifest_dict(),
        "thresholds": th.to_dict(),
        "calibration": th.calibration,
        "held_out": f"fashion-mnist:test[0:{half}] as 512x512 canvases (seed {seed + 2}), "
        f"test[{half}:{held_out}] as photos of random size (seed {seed + 3})",
        "held_out_stopped_at_alignment": sum(sum(e.stopped) for e in held.values()),
        "held_out_flag_reasons": reasons,
        "held_out_statistics": quantiles,
        "out_of_domain": {
            kind: {"n": e.n, "stopped_at_alignment": sum(e.stopped)} for kind, e in ood.items()
        },
        "gates": rows,
        "wall_s": round(time.time() - t0, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Calibrate a bundle's gate on catalogue canvases and measure it against baselines."""
    p = argparse.ArgumentParser(prog="python -m inversion.domain_eval", description=main.__doc__)
    p.add_argument("--bundle", default="inversion/bundles/demo")
    p.add_argument("--fit", type=int, default=2000)
    p.add_argument("--calib", type=int, default=500)
    p.add_argument("--held-out", type=int, default=500)
    p.add_argument("--quantile", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--other-quantiles",
        default="",
        help="comma-separated quantiles to report too (same encodings; the gate saved is "
        "the --quantile one)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="also write the result here")
    p.add_argument(
        "--save",
        help="write the calibrated gate here (safetensors), for "
        "`python -m inversion bundle domain --gate-from`",
    )
    p.add_argument(
        "--shipped",
        action="store_true",
        help="measure the bundle's shipped gate as it is (no fit, no calibration; "
        "--fit/--calib/--quantile/--save are ignored)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.shipped:
        result = evaluate_shipped(
            args.bundle, args.held_out, args.seed, log=lambda m: print(m, file=sys.stderr)
        )
        text = json.dumps(result, indent=1)
        print(text)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text + "\n")
        return 0
    result = evaluate_gates(
        args.bundle,
        args.fit,
        args.calib,
        args.held_out,
        args.quantile,
        args.seed,
        log=lambda m: print(m, file=sys.stderr),
        other_quantiles=[float(q) for q in args.other_quantiles.split(",") if q.strip()],
    )
    gate = result.pop("gate")
    if args.save:
        gate.save(args.save)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
