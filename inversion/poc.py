"""Proof-of-concept report: how well does a bundle serve *your* photos, and at what cost.

Why: the research this product builds on tells a company to start with a small proof
of concept on its own photos before adopting the model. ``python -m inversion poc
--bundle B --photos DIR --out report/ [--gpu-hour-price X] [--classifier CLF]`` is that
step as one command. For every photo in ``DIR`` it does what a job does -- align with
the bundle's declared domain (:mod:`inversion.bundle_domain`), invert the crop -- and
reports:

* reconstruction fidelity: per-image PSNR / SSIM (:func:`inversion.evaluate.recon_metrics`,
  the same metric code as ``python -m inversion evaluate``), mean and quantiles;
* the domain gate's pass rate (the bundle's calibrated :class:`~inversion.domain.DomainGate`,
  judged as a job judges a photo: W+ code, reconstruction and crop); "no gate" when the
  bundle declares none;
* per-edit success and preservation when a classifier is given
  (:func:`inversion.evaluate.edit_metrics`, the evaluate command's rules);
* speed on this hardware: seconds per image to invert, and to invert + render one edit
  (a job), images per hour, and the cost per 1,000 images at ``--gpu-hour-price``;
* ``report.html`` (self-contained: image grids original / reconstruction / edits and
  histograms as embedded PNGs) and ``report.json`` with every figure, per-image rows and
  the command that reproduces it.

Photos that cannot be read or aligned are listed in the report (``skipped``), not
silently dropped.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import shlex
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inversion.errors import InversionError

__all__ = [
    "PocError",
    "list_photos",
    "load_photos",
    "measure",
    "write_html",
    "add_arguments",
    "run",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


class PocError(InversionError, ValueError):
    """The photo folder or the options cannot give a report."""


def list_photos(folder: str | Path | Sequence[Path], limit: int | None = None) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by path (deterministic); a list
    of paths is taken as it is."""
    if not isinstance(folder, str | Path):
        paths = [Path(p) for p in folder][:limit]
        if not paths:
            raise PocError("no photos given")
        return paths
    root = Path(folder)
    if not root.is_dir():
        raise PocError(f"{str(root)!r} is not a folder of photos")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise PocError(f"{str(root)!r} holds no photos ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_photos(
    paths: Sequence[Path], domain: Any, *, aligned: bool = False
) -> tuple[list[Any], list[str], list[dict[str, str]]]:
    """(aligned crops as PIL images, their names, skipped [{name, reason}]).

    Each photo is decoded with the platform's validation (:func:`load_image_bytes`) and
    aligned with the domain's method at the model's resolution, as a job does; with
    ``aligned`` the photos are taken as crops already (only resized, like ``evaluate``
    takes its images), for comparing the two commands on the same pixels."""
    from inversion.align import align
    from inversion.preprocess import load_image_bytes

    crops, names, skipped = [], [], []
    for p in paths:
        try:
            img = load_image_bytes(p.read_bytes())
            method = "center" if aligned else domain.align
            crops.append(align(img, method, domain.resolution).crop(img))
            names.append(p.name)
        except (OSError, InversionError, ValueError) as exc:
            skipped.append({"name": p.name, "reason": str(exc) or type(exc).__name__})
    return crops, names, skipped


def _quantiles(v: Tensor) -> dict[str, float]:
    v = v.double()
    q = torch.quantile(v, torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64))
    return {
        "mean": float(v.mean()),
        "std": float(v.std()) if v.numel() > 1 else 0.0,
        "min": float(v.min()),
        "p05": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": float(v.max()),
    }


@torch.no_grad()
def _speed(inverter: Any, x: Tensor, edit: dict[str, float] | None, batch: int) -> dict[str, Any]:
    """Seconds per image: invert (batched), and invert + one edit (a job's work)."""
    inverter.invert(x[: min(batch, 2)], batch_size=batch)  # warm-up (allocations, caches)
    t0 = time.perf_counter()
    inv = inverter.invert(x, batch_size=batch)
    t1 = time.perf_counter()
    if edit:
        inverter.edit(inv, edit, batch_size=batch)
    t2 = time.perf_counter()
    n = x.shape[0]
    invert_s = (t1 - t0) / n
    job_s = (t2 - t0) / n
    return {
        "n": n,
        "batch": batch,
        "invert_s_per_image": invert_s,
        "job_s_per_image": job_s,
        "job": f"invert + edit {edit}" if edit else "invert only (the catalog is empty)",
        "images_per_hour": 3600.0 / job_s if job_s > 0 else None,
    }


def measure(
    bundle_path: str | Path,
    photos: str | Path | Sequence[Path],
    *,
    classifier_path: str | Path | None = None,
    gpu_hour_price: float | None = None,
    device: str = "cpu",
    batch: int = 100,
    limit: int | None = None,
    progress: bool = True,
    aligned: bool = False,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """All figures of the report (JSON-safe) and the tensors its images are drawn from."""
    from inversion.bundle import load_bundle
    from inversion.evaluate import edit_metrics, machine_info, machine_load, recon_metrics
    from inversion.inverter import Inverter
    from inversion.preprocess import image_to_tensor

    t_start = time.time()
    bundle = load_bundle(bundle_path)
    inverter = Inverter(bundle, device=device, batch_size=batch)
    paths = list_photos(photos, limit)
    crops, names, skipped = load_photos(paths, bundle.domain, aligned=aligned)
    if not crops:
        raise PocError(f"none of the {len(paths)} photos could be read and aligned: {skipped}")
    # on the model's device: metrics, edits and the gate then compare like with like
    x = image_to_tensor(crops, inverter.output_size).to(inverter.device)
    n = x.shape[0]
    load_before = machine_load()
    inv = inverter.invert(x, batch_size=batch)
    inv._input = x  # what edit_metrics compares the edits with (as evaluate does)
    rec_m = recon_metrics(inv.reconstruction, x)
    if progress:
        print(f"reconstruction: PSNR {float(rec_m['psnr'].mean()):.2f} dB on {n} photos")

    gate_fig: dict[str, Any]
    per_gate: list[Any] = [None] * n
    if bundle.domain_gate is not None:
        reports = bundle.domain_gate.assess(inv.wplus, inv.reconstruction, x)
        per_gate = reports
        reasons: dict[str, int] = {}
        for r in reports:
            for k in r.reasons:
                reasons[k] = reasons.get(k, 0) + 1
        gate_fig = {
            "declared": True,
            "pass_rate": sum(r.in_domain for r in reports) / n,
            "passed": sum(r.in_domain for r in reports),
            "n": n,
            "flag_reasons": reasons,
            "thresholds": bundle.domain_gate.thresholds.to_dict(),
            "ood_score": _quantiles(torch.tensor([r.ood_score for r in reports])),
        }
    else:
        gate_fig = {
            "declared": False,
            "pass_rate": None,
            "n": n,
            "note": "the bundle declares no domain gate",
        }

    edits: dict[str, Any] = {}
    samples: dict[str, Tensor] = {}
    if classifier_path is not None:
        from inversion.training.classifier import ATTRIBUTES, load_classifier

        clf = load_classifier(classifier_path)
        edits, samples = edit_metrics(inverter, inv, clf, ATTRIBUTES, bundle.catalog, batch)

    first = next(iter(bundle.catalog), None)
    speed = _speed(inverter, x, {first.name: first.default_strength} if first else None, batch)
    speed["hardware"] = machine_info()
    speed["load"] = {"before": load_before, "after": machine_load()}
    cost = None
    if gpu_hour_price is not None:
        cost = {
            "price_per_hour": gpu_hour_price,
            "per_1000_images": gpu_hour_price * 1000.0 / speed["images_per_hour"],
            "basis": "job_s_per_image on the hardware above",
        }
    rows = []
    for i, name in enumerate(names):
        g = per_gate[i]
        rows.append(
            {
                "name": name,
                "psnr": float(rec_m["psnr"][i]),
                "ssim": float(rec_m["ssim"][i]),
                "mse": float(rec_m["mse"][i]),
                "in_domain": None if g is None else bool(g.in_domain),
                "ood_score": None if g is None else g.ood_score,
                "gate_reasons": None if g is None else list(g.reasons),
            }
        )
    result = {
        "bundle": {
            "path": str(bundle_path),
            "version": bundle.version,
            "domain": bundle.domain.to_dict(),
            "parent": bundle.provenance.get("parent"),
        },
        "photos": {
            "folder": str(photos) if isinstance(photos, str | Path) else f"{len(paths)} files",
            "n_found": len(paths),
            "n_used": n,
            "skipped": skipped,
            "aligned_by": "center (given as crops)" if aligned else bundle.domain.align,
            "sha256": hashlib.sha256(
                "".join(f"{p.name}:{sha256_file(p)}\n" for p in paths).encode()
            ).hexdigest(),
        },
        "reconstruction": {
            "n": n,
            **{k: float(v.mean()) for k, v in rec_m.items()},
            "psnr_distribution": _quantiles(rec_m["psnr"]),
            "ssim_distribution": _quantiles(rec_m["ssim"]),
        },
        "domain_gate": gate_fig,
        "edits": edits,
        "classifier": str(classifier_path) if classifier_path else None,
        "speed": speed,
        "cost": cost,
        "per_image": rows,
        "wall_s": round(time.time() - t_start, 1),
    }
    tensors = {"input": x, "reconstruction": inv.reconstruction, **samples}
    return result, tensors


# -- the report --------------------------------------------------------------------------


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _grid_png(tensors: dict[str, Tensor], n_cols: int = 12, scale: int = 3) -> bytes:
    from inversion.training.images import save_grid

    k = min(n_cols, tensors["input"].shape[0])
    rows = [t[:k].cpu().float() for t in tensors.values()]
    with tempfile.TemporaryDirectory() as tmp:
        p = save_grid(torch.cat(rows), Path(tmp) / "grid.png", nrow=k, scale=scale)
        return p.read_bytes()


def _histogram_png(
    values: Sequence[float], title: str, xlabel: str, threshold: float | None = None
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.8), dpi=100)
    ax.hist(list(values), bins=30, color="#4a78b5")
    if threshold is not None:
        ax.axvline(threshold, color="#c0392b", linestyle="--", label="gate limit")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("photos", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def write_html(result: dict[str, Any], tensors: dict[str, Tensor], path: str | Path) -> Path:
    """``report.html``: figures, grids and histograms; no external resources."""
    e = html.escape
    r = result["reconstruction"]
    g = result["domain_gate"]
    s = result["speed"]
    rows_psnr = [x["psnr"] for x in result["per_image"]]
    rows_ssim = [x["ssim"] for x in result["per_image"]]
    th = g.get("thresholds") or {}
    imgs = [
        (
            "Reconstruction PSNR",
            _histogram_png(rows_psnr, "PSNR per photo", "dB", th.get("psnr_min")),
        ),
        (
            "Reconstruction SSIM",
            _histogram_png(rows_ssim, "SSIM per photo", "SSIM", th.get("ssim_min")),
        ),
    ]
    if g.get("declared"):
        ood = [x["ood_score"] for x in result["per_image"]]
        imgs.append(
            (
                "Domain gate score",
                _histogram_png(ood, "unusualness (Mahalanobis)", "score", th.get("ood_max")),
            )
        )
    grid_rows = ", ".join(tensors)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Proof of concept: {e(result['bundle']['version'][:12])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "text-align:right}th{background:#eee}code,pre{background:#f6f6f6}"
        "img{image-rendering:pixelated}</style></head><body>",
        "<h1>Proof of concept on your photos</h1>",
        f"<p>Bundle <code>{e(result['bundle']['path'])}</code>, version "
        f"<code>{e(result['bundle']['version'])}</code>; photos <code>"
        f"{e(result['photos']['folder'])}</code>: {result['photos']['n_used']} used of "
        f"{result['photos']['n_found']} found (set hash <code>"
        f"{e(result['photos']['sha256'][:16])}</code>).</p>",
        "<h2>Summary</h2><table>",
        f"<tr><th>reconstruction PSNR (mean / median)</th><td>{r['psnr']:.2f} / "
        f"{r['psnr_distribution']['median']:.2f} dB</td></tr>",
        f"<tr><th>reconstruction SSIM (mean / median)</th><td>{r['ssim']:.4f} / "
        f"{r['ssim_distribution']['median']:.4f}</td></tr>",
        "<tr><th>domain gate pass rate</th><td>"
        + (
            f"{g['pass_rate'] * 100:.1f}% ({g['passed']} of {g['n']})"
            if g.get("declared")
            else "no gate declared"
        )
        + "</td></tr>",
        f"<tr><th>seconds per image: invert / job</th><td>{s['invert_s_per_image']:.4f} / "
        f"{s['job_s_per_image']:.4f}</td></tr>",
        f"<tr><th>images per hour (jobs)</th><td>{_fmt(s['images_per_hour'], ',.0f')}</td></tr>",
        "<tr><th>cost per 1,000 images</th><td>"
        + (
            f"{result['cost']['per_1000_images']:.4f} at {result['cost']['price_per_hour']:g}"
            " per GPU-hour"
            if result.get("cost")
            else "no price given"
        )
        + "</td></tr></table>",
        f"<p>Hardware: <code>{e(json.dumps(s['hardware']))}</code>; load average before / "
        f"after: {s['load']['before']['loadavg']} / {s['load']['after']['loadavg']}. "
        f"Job = {e(s['job'])}, batch {s['batch']}.</p>",
    ]
    if result["edits"]:
        parts.append(
            "<h2>Edits</h2><table><tr><th>edit</th><th>strength</th><th>Fuser</th>"
            "<th>success</th><th>class kept</th><th>tone kept</th>"
            "<th>SSIM to input</th></tr>"
        )
        for name, row in result["edits"].items():
            for key, label in (("fuser", "with"), ("no_fuser", "without")):
                m = row[key]
                parts.append(
                    f"<tr><td>{e(name)}</td><td>{row['strength']:g}</td><td>{label}</td>"
                    f"<td>{m['success'] * 100:.1f}%</td><td>{m['class_kept'] * 100:.1f}%</td>"
                    f"<td>{m.get('tone_kept', 0) * 100:.0f}%</td>"
                    f"<td>{_fmt(m.get('ssim_to_input'))}</td></tr>"
                )
        parts.append(
            "</table><p>Rules as in <code>python -m inversion evaluate</code>: "
            + "; ".join(e(f"{k}: {v['success_rule']}") for k, v in result["edits"].items())
            + ".</p>"
        )
    else:
        parts.append("<p>Edits: no classifier given, success is not measured.</p>")
    parts.append(f"<h2>Samples</h2><p>Rows: {e(grid_rows)}.</p>")
    parts.append(f"<img alt='grid' src='{_png_data_uri(_grid_png(tensors))}'>")
    parts.append("<h2>Distributions</h2>")
    for title, png in imgs:
        parts.append(f"<img alt='{e(title)}' src='{_png_data_uri(png)}'>")
    parts.append("<h2>Reproduce</h2><pre>" + e(result.get("command", "")) + "</pre>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True, type=Path, help="model bundle directory")
    p.add_argument("--photos", required=True, type=Path, help="folder of your photos")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument(
        "--aligned",
        action="store_true",
        help="the photos are model-sized crops already (as `evaluate` takes them): "
        "resize only, no alignment",
    )
    p.add_argument(
        "--gpu-hour-price",
        type=float,
        default=None,
        help="price of one hour of the hardware, for the cost per 1,000 images",
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="attribute classifier for edit success (e.g. the demo's)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--limit", type=int, default=None, help="use only the first N photos")


def run(args: argparse.Namespace) -> int:
    if args.gpu_hour_price is not None and args.gpu_hour_price < 0:
        raise PocError("--gpu-hour-price must be >= 0")
    if args.batch < 1:
        raise PocError("--batch must be >= 1")
    result, tensors = measure(
        args.bundle,
        args.photos,
        classifier_path=args.classifier,
        gpu_hour_price=args.gpu_hour_price,
        device=args.device,
        batch=args.batch,
        limit=args.limit,
        aligned=args.aligned,
    )
    result["command"] = "python -m inversion " + shlex.join(getattr(args, "_argv", ["poc"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(result, indent=2))
    write_html(result, tensors, args.out / "report.html")
    g = result["domain_gate"]
    print(
        f"{result['reconstruction']['n']} photos: PSNR {result['reconstruction']['psnr']:.2f} dB,"
        f" SSIM {result['reconstruction']['ssim']:.4f}, gate pass "
        + (f"{g['pass_rate'] * 100:.1f}%" if g.get("declared") else "n/a")
        + f" -> {args.out / 'report.html'}"
    )
    return 0
