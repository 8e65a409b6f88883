"""Quality report: reconstruction and edit quality of a bundle against baselines.

``python -m inversion evaluate --bundle inversion/bundles/demo --psp PSP --classifier CLF
--out docs/quality.md`` measures on held-out real images (the official Fashion-MNIST
test split, never used in training):

* reconstruction MSE, PSNR and SSIM (images scaled to [0, 1]; SSIM with an 11x11
  Gaussian window, sigma 1.5, 'valid' borders, per channel, as Wang et al. 2004) and
  wall time per image for (a) the bundle's MambaStyle encoder + Fuser (through the
  platform's :class:`~inversion.inverter.Inverter`), (b) the pSp baseline trained with
  the same recipe and budget, (c) optimisation-based inversion (Adam on W+ from
  ``latent_avg``, batched) on a seeded random subset -- the quality ceiling of the
  generator;
* trivial baselines: downsample to 16x16 / 8x8 and scale back up (bilinear and bicubic,
  antialiased downsampling), the floor any encoder must clear;
* single-image latency (batch 1, one PIL upload, invert and invert + edit) separately
  from batch throughput, with the machine's load average at measurement;
* for each catalog edit with a measurable attribute, at its default strength
  (:mod:`inversion.training.edit_measures`): success on its own attribute, class kept,
  the attribute's measured change and the tone change, with and without the Fuser;
* an image grid (inputs, reconstructions by each method, edits).

``--reuse-optimisation`` takes the optimisation ceiling from an earlier evaluation of the
same generator (a manifest or evaluation JSON) instead of re-running it; the report says so.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ssim",
    "psnr",
    "recon_metrics",
    "optimise_inversion",
    "projector_lr_scale",
    "evaluate",
    "write_report",
    "add_arguments",
    "run",
]


# -- metrics -----------------------------------------------------------------------------


def _gaussian(window: int, sigma: float) -> Tensor:
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim(
    x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> Tensor:
    """Per-image SSIM of (B, C, H, W) images in [0, data_range] (Gaussian window)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"ssim needs two (B, C, H, W) tensors of one shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    window = min(window, x.shape[-1], x.shape[-2])
    c = x.shape[1]
    g = _gaussian(window, sigma).to(x.device)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    x, y = x.double(), y.double()
    kx, ky = kx.double(), ky.double()
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean((1, 2, 3)).float()


def psnr(mse: Tensor, data_range: float = 1.0) -> Tensor:
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def recon_metrics(rec: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-image MSE, PSNR, SSIM; inputs in [-1, 1], measured on [0, 1]."""
    a = rec.float().clamp(-1, 1).add(1).div(2)
    b = target.float().clamp(-1, 1).add(1).div(2)
    mse = (a - b).pow(2).mean((1, 2, 3))
    return {"mse": mse, "psnr": psnr(mse), "ssim": ssim(a, b)}


def _summary(m: dict[str, Tensor]) -> dict[str, float]:
    return {k: float(v.mean()) for k, v in m.items()}


# -- inversion methods -------------------------------------------------------------------


def projector_lr_scale(step: int, steps: int, ramp_up: bool = True) -> float:
    """StyleGAN2 projector's schedule: short ramp-up, cosine ramp-down (floor 0.02).

    ``ramp_up=False`` skips the warm-up (a start already near the optimum, as in
    :mod:`inversion.refine`, needs none)."""
    t = step / max(1, steps)
    scale = min(1.0, (1 - t) / 0.25)
    scale = 0.5 - 0.5 * math.cos(scale * math.pi)
    scale *= min(1.0, t / 0.05) if steps > 20 and ramp_up else 1.0
    return max(scale, 0.02)


def optimise_inversion(
    g: torch.nn.Module,
    latent_avg: Tensor,
    images: Tensor,
    steps: int = 500,
    lr: float = 0.05,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Adam on W+ (per image, batched), from latent_avg, pixel MSE; returns renders."""
    from inversion.training.checkpoint import requires_grad
    from inversion.training.fastconv import use_fast_ops

    g = use_fast_ops(copy.deepcopy(g)).eval()
    requires_grad(g, False)
    outs = []
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch]
        w = latent_avg.reshape(1, 1, -1).repeat(x.shape[0], g.n_latent, 1).clone()
        w.requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
        for s in range(steps):
            for grp in opt.param_groups:
                grp["lr"] = lr * projector_lr_scale(s, steps)
            rec = g.synthesis(w, noise="const")
            loss = F.mse_loss(rec, x, reduction="sum") / x[0].numel()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress is not None:
                progress(1)
        with torch.no_grad():
            outs.append(g.synthesis(w.detach(), noise="const"))
    return torch.cat(outs)


@torch.no_grad()
def _encode_render(
    encoder: torch.nn.Module, g: torch.nn.Module, latent_avg: Tensor, images: Tensor, batch: int
) -> Tensor:
    out = []
    size = encoder.cfg.input_size
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch]
        if x.shape[-1] != size:
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        w = encoder(x).wplus + latent_avg.reshape(1, 1, -1)
        out.append(g.synthesis(w, noise="const"))
    return torch.cat(out)


def _timed(fn: Callable[[], Tensor]) -> tuple[Tensor, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


BASELINE_SIZES = (16, 8)
BASELINE_MODES = ("bilinear", "bicubic")


def downsample_upsample(images: Tensor, size: int, mode: str) -> Tensor:
    """The trivial baseline: antialiased downsampling to ``size`` and back up (``mode``)."""
    small = F.interpolate(images, size=(size, size), mode=mode, align_corners=False, antialias=True)
    return F.interpolate(small, size=images.shape[-2:], mode=mode, align_corners=False).clamp(-1, 1)


def machine_load() -> dict[str, Any]:
    """Load averages (1, 5, 15 min) and ``uptime``'s line, as the measurement saw them."""
    import subprocess

    try:
        line = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        line = ""
    return {"loadavg": [round(v, 2) for v in os.getloadavg()], "uptime": line}


@torch.no_grad()
def single_image_latency(
    inverter: Any, images: Tensor, edit: dict[str, float] | None, repeats: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """Wall time of one upload: a PIL image through ``invert`` (batch 1), and + ``edit``.

    Median and 90th percentile over ``repeats`` different images, after ``warmup`` runs.
    """
    pils = inverter.to_pil(images[: repeats + warmup])
    t_inv, t_both = [], []
    for i, pil in enumerate(pils):
        t0 = time.perf_counter()
        inv = inverter.invert(pil, batch_size=1)
        t1 = time.perf_counter()
        if edit:
            inverter.edit(inv, edit, batch_size=1)
        t2 = time.perf_counter()
        if i >= warmup:
            t_inv.append((t1 - t0) * 1000)
            t_both.append((t2 - t0) * 1000)

    def stats(v: list[float]) -> dict[str, float]:
        t = torch.tensor(v)
        return {
            "median_ms": round(float(t.median()), 2),
            "p90_ms": round(float(t.quantile(0.9)), 2),
        }

    return {
        "repeats": len(t_inv),
        "invert": stats(t_inv),
        "invert_and_edit": stats(t_both) if edit else None,
        "edit": edit,
        "load": machine_load(),
    }


# -- edits -------------------------------------------------------------------------------


def _supervised_edits(catalog: Any, attributes: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(edit name, attribute, default strength) for catalog edits backed by a boundary."""
    out = []
    for spec in catalog:
        if spec.direction.startswith("interfacegan_"):
            attr = spec.direction[len("interfacegan_") :]
            if attr in attributes:
                out.append((spec.name, attr, spec.default_strength))
    return out


def _measured_edits(catalog: Any, attributes: tuple[str, ...]) -> list[tuple[Any, str]]:
    """(spec, attribute) for catalog edits whose attribute the classifier can measure."""
    from inversion.training.edit_measures import attribute_of

    out = []
    for spec in catalog:
        attr = attribute_of(spec)
        if attr in attributes:
            out.append((spec, attr))
    return out


@torch.no_grad()
def edit_metrics(
    inverter: Any, inversion: Any, clf: Any, attributes: tuple[str, ...], catalog: Any, batch: int
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Per measurable edit at its default strength: :func:`edit_measures.measure_edit`."""
    from inversion.training.classifier import CATEGORY_GROUPS
    from inversion.training.edit_measures import MIN_CHANGE, TONE_TOLERANCE, measure_edit
    from inversion.training.edit_measures import summarise as summarise_effects

    recon = inversion.reconstruction
    s0 = clf.attributes(recon)
    results: dict[str, Any] = {}
    samples: dict[str, Tensor] = {}
    for spec, attr in _measured_edits(catalog, attributes):
        category = attr in CATEGORY_GROUPS
        declared = (spec.measured or {}).get("min_change")
        min_change = float(declared) if declared is not None else MIN_CHANGE.get(attr, 0.0)
        row: dict[str, Any] = {
            "attribute": attr,
            "kind": "category" if category else "attribute",
            "strength": spec.default_strength,
            "sensitive": bool(spec.sensitive),
            "layers": list(spec.layers) if spec.layers is not None else None,
            "success_rule": (
                "the classifier's group label flips"
                if category
                else f"{attr} moves in the requested direction by >= {min_change:g}"
            ),
            "tone_tolerance": TONE_TOLERANCE,
            "changes": spec.changes,
            "preserves": spec.preserves,
        }
        for use_fuser in (True, False):

            def render(
                signed: Tensor, use_fuser: bool = use_fuser, name: str = spec.name
            ) -> Tensor:
                out = torch.empty_like(recon)
                for value in signed.unique().tolist():
                    idx = (signed == value).nonzero().flatten()
                    out[idx] = inverter.edit(
                        inversion[idx], {name: value}, use_fuser=use_fuser, batch_size=batch
                    ).to(recon.dtype)
                return out

            effects, edited = measure_edit(
                render,
                recon,
                clf,
                attr,
                spec.default_strength,
                s0,
                min_change=None if category else min_change,
            )
            r = summarise_effects(effects)
            r["ssim_to_input"] = (
                float(
                    ssim(
                        edited.clamp(-1, 1).add(1).div(2), inversion_input(inversion).add(1).div(2)
                    ).mean()
                )
                if getattr(inversion, "_input", None) is not None
                else None
            )
            row["fuser" if use_fuser else "no_fuser"] = r
            if use_fuser:
                samples[spec.name] = edited
        results[spec.name] = row
    return results, samples


def inversion_input(inversion: Any) -> Tensor:
    return inversion._input


# -- the report --------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def evaluate(
    bundle_path: str | Path,
    classifier_path: str | Path,
    psp_path: str | Path | None = None,
    n: int = 1000,
    opt_n: int = 200,
    opt_steps: int = 500,
    opt_lr: float = 0.05,
    seed: int = 0,
    batch: int = 100,
    images: Tensor | None = None,
    grid_path: str | Path | None = None,
    progress: bool = True,
    reuse_optimisation: str | Path | None = None,
    latency_repeats: int = 20,
    previous: str | Path | None = None,
) -> dict[str, Any]:
    from inversion.bundle import load_bundle
    from inversion.inverter import Inverter
    from inversion.training.classifier import ATTRIBUTES, load_classifier
    from inversion.training.data import load_fashion_mnist

    t_start = time.time()
    bundle = load_bundle(bundle_path)
    inverter = Inverter(bundle, device="cpu", batch_size=batch)
    g, latent_avg = inverter.generator, inverter.latent_avg
    clf = load_classifier(classifier_path)
    if images is None:
        test, _ = load_fashion_mnist("test", size=g.size)
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(test.shape[0], generator=gen)[:n]
        images, source = test[idx], f"fashion-mnist:test ({n} of 10000, seed {seed})"
    else:
        idx = torch.arange(images.shape[0])
        source = f"given tensor ({images.shape[0]} images)"
    n = images.shape[0]
    opt_n = min(opt_n, n)
    gen = torch.Generator().manual_seed(seed + 1)
    opt_idx = torch.randperm(n, generator=gen)[:opt_n].sort().values

    def log(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    load_before = machine_load()
    # (a) ours
    inv, t_ours = _timed(lambda: inverter.invert(images, batch_size=batch))
    inv._input = images
    m_ours = recon_metrics(inv.reconstruction, images)
    log(f"ours: {_summary(m_ours)} {t_ours / n * 1000:.2f} ms/image")
    params_ours = sum(p.numel() for p in inverter.encoder.parameters())
    params_fuser = sum(p.numel() for p in inverter.fuser.parameters())
    methods: dict[str, Any] = {
        "ours": {
            "label": "MambaStyle encoder + Fuser (ours)",
            **_summary(m_ours),
            "ms_per_image": t_ours / n * 1000,
            "parameters": params_ours + params_fuser,
            "n": n,
            "batch": batch,
        },
    }
    # ours without the Fuser (W+ only), for reference
    with torch.no_grad():
        rec_nf = torch.cat(
            [g.synthesis(inv.wplus[i : i + batch], noise="const") for i in range(0, n, batch)]
        )
    methods["ours_no_fuser"] = {
        "label": "MambaStyle encoder, W+ only (no Fuser)",
        **_summary(recon_metrics(rec_nf, images)),
        "parameters": params_ours,
        "n": n,
    }
    recs = {"ours": inv.reconstruction}
    # trivial baselines: what an encoder must beat to be worth its parameters
    for size in BASELINE_SIZES:
        for mode in BASELINE_MODES:
            rec_b = downsample_upsample(images, size, mode)
            methods[f"down{size}_{mode}"] = {
                "label": f"downsample to {size}x{size} and back ({mode})",
                **_summary(recon_metrics(rec_b, images)),
                "n": n,
            }
            if mode == "bilinear":
                recs[f"down{size}"] = rec_b

    # the bundle this one replaces, on the same images (did retraining help?)
    m_prev = None
    if previous is not None:
        prev = load_bundle(previous)
        rec_prev = Inverter(prev, device="cpu", batch_size=batch).invert(images).reconstruction
        m_prev = recon_metrics(rec_prev, images)
        methods["previous"] = {
            "label": f"previous bundle `{prev.version[:12]}` (encoder + Fuser it shipped)",
            **_summary(m_prev),
            "parameters": sum(
                v.numel() for k in ("encoder", "fuser") for v in prev.state_dicts[k].values()
            ),
            "n": n,
            "version": prev.version,
        }
        recs["previous"] = rec_prev
        log(f"previous: {methods['previous']}")

    # (b) pSp
    if psp_path is not None:
        from inversion.training.train_encoder import load_encoder_export

        _, psp, _, _, _ = load_encoder_export(psp_path)
        rec_psp, t_psp = _timed(lambda: _encode_render(psp, g, latent_avg, images, batch))
        m_psp = recon_metrics(rec_psp, images)
        methods["psp"] = {
            "label": "pSp baseline (same data and step budget as ours; not converged)",
            **_summary(m_psp),
            "ms_per_image": t_psp / n * 1000,
            "batch": batch,
            "parameters": sum(p.numel() for p in psp.parameters()),
            "n": n,
        }
        recs["psp"] = rec_psp
        log(f"psp: {methods['psp']}")

    # (c) optimisation on a subset (and ours on the same subset, for the gap)
    if reuse_optimisation is not None:
        methods.update(_reused_optimisation(reuse_optimisation, m_ours, opt_idx))
        if "psp" in methods:
            methods["psp_on_opt_subset"] = {
                "label": "pSp on the optimisation subset",
                **{k: float(v[opt_idx].mean()) for k, v in m_psp.items()},
                "n": opt_n,
            }
    elif opt_n > 0 and opt_steps > 0:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=opt_steps * math.ceil(opt_n / 200), desc="optimisation")
        rec_opt, t_opt = _timed(
            lambda: optimise_inversion(
                g,
                latent_avg,
                images[opt_idx],
                steps=opt_steps,
                lr=opt_lr,
                batch=200,
                progress=(bar.update if bar is not None else None),
            )
        )
        if bar is not None:
            bar.close()
        m_opt = recon_metrics(rec_opt, images[opt_idx])
        methods["optimisation"] = {
            "label": f"optimisation ({opt_steps} Adam steps on W+, batched)",
            **_summary(m_opt),
            "ms_per_image": t_opt / opt_n * 1000,
            "n": opt_n,
            "parameters": 0,
        }
        sub = {k: float(v[opt_idx].mean()) for k, v in m_ours.items()}
        methods["ours_on_opt_subset"] = {
            "label": "ours on the optimisation subset",
            **sub,
            "n": opt_n,
        }
        if "psp" in methods:
            methods["psp_on_opt_subset"] = {
                "label": "pSp on the optimisation subset",
                **{k: float(v[opt_idx].mean()) for k, v in m_psp.items()},
                "n": opt_n,
            }
        recs["optimisation"] = rec_opt
        log(f"optimisation: {methods['optimisation']}")

    if m_prev is not None and "optimisation" in methods:
        methods["previous_on_opt_subset"] = {
            "label": "previous bundle on the optimisation subset",
            **{k: float(v[opt_idx].mean()) for k, v in m_prev.items()},
            "n": opt_n,
        }

    # edits
    edits, samples = edit_metrics(inverter, inv, clf, ATTRIBUTES, bundle.catalog, batch)
    log(f"edits: {json.dumps(edits)}")
    first = next(iter(edits), None)
    latency = single_image_latency(
        inverter,
        images,
        {first: bundle.catalog[first].default_strength} if first else None,
        repeats=min(latency_repeats, max(1, n - 3)),
    )
    log(f"latency: {latency}")

    result = {
        "bundle": {
            "path": str(bundle_path),
            "version": bundle.version,
            "files": bundle.manifest["files"],
        },
        "latency": latency,
        "load": {"before": load_before, "after": machine_load()},
        "data": source,
        "n_images": n,
        "opt_subset": {"n": opt_n, "seed": seed + 1, "steps": opt_steps, "lr": opt_lr},
        "methods": methods,
        "edits": edits,
        "classifier": str(classifier_path),
        "machine": machine_info(),
        "wall_s": round(time.time() - t_start, 1),
        "seed": seed,
    }
    if grid_path is not None:
        result["grid"] = str(
            save_quality_grid(grid_path, images, recs, samples, opt_idx, bundle.catalog)
        )
    return result


def _reused_optimisation(
    path: str | Path, m_ours: dict[str, Tensor], opt_idx: Tensor
) -> dict[str, Any]:
    """The optimisation rows of an earlier evaluation of the same generator.

    Accepts a bundle manifest (``metrics.reconstruction``) or an evaluation JSON
    (``methods``). The subset must be the same images (same ``--seed``, ``--n``,
    ``--opt-n``); ours is re-measured on it here.
    """
    data = json.loads(Path(path).read_text())
    rows = data.get("methods") or data.get("metrics", {}).get("reconstruction", {})
    if "optimisation" not in rows:
        raise ValueError(f"{path}: no optimisation figures to reuse")
    opt = dict(rows["optimisation"])
    if int(opt["n"]) != len(opt_idx):
        raise ValueError(
            f"{path}: optimisation ran on {opt['n']} images, this subset has {len(opt_idx)}"
        )
    if "[reused" not in opt["label"]:  # a reused row reused again keeps one note
        opt["label"] += " [reused: previous evaluation run of this generator]"
    opt["reused_from"] = str(path)
    out = {
        "optimisation": opt,
        "ours_on_opt_subset": {
            "label": "ours on the optimisation subset",
            **{k: float(v[opt_idx].mean()) for k, v in m_ours.items()},
            "n": len(opt_idx),
        },
    }
    return out


def save_quality_grid(
    path: str | Path,
    images: Tensor,
    recs: dict[str, Tensor],
    edits: dict[str, Tensor],
    opt_idx: Tensor,
    catalog: Any,
    n_cols: int = 8,
) -> Path:
    """Rows: input, each method's reconstruction, then each supervised edit (ours)."""
    from inversion.training.images import save_grid

    cols = opt_idx[:n_cols] if "optimisation" in recs else torch.arange(min(n_cols, len(images)))
    rows = [images[cols]]
    for key in ("ours", "previous", "psp", "down16"):
        if key in recs:
            rows.append(recs[key][cols])
    if "optimisation" in recs:
        rows.append(recs["optimisation"][: len(cols)])
    for name in edits:
        rows.append(edits[name][cols])
    return save_grid(torch.cat(rows), path, nrow=len(cols), scale=3)


def _row_names(result: dict[str, Any]) -> list[str]:
    names = ["input", "ours"]
    if "previous" in result["methods"]:
        names.append("previous bundle")
    if "psp" in result["methods"]:
        names.append("pSp")
    if "down16_bilinear" in result["methods"]:
        names.append("16x16 downsample-upsample (bilinear)")
    if (
        "optimisation" in result["methods"]
        and "reused_from" not in result["methods"]["optimisation"]
    ):
        names.append("optimisation")
    names += [f"edit: {k}" for k in result["edits"]]
    return names


RECON_ROWS = (
    "ours",
    "ours_no_fuser",
    "previous",
    "psp",
    "down16_bilinear",
    "down16_bicubic",
    "down8_bilinear",
    "down8_bicubic",
    "optimisation",
    "ours_on_opt_subset",
    "previous_on_opt_subset",
    "psp_on_opt_subset",
)


def write_report(
    result: dict[str, Any],
    out: str | Path,
    extra: dict[str, Any] | None = None,
    command: str | None = None,
) -> Path:
    out = Path(out)
    m = result["methods"]
    b = result["bundle"]
    lines = ["# Quality report: demo bundle", ""]
    lines += [
        f"Bundle `{b['path']}`, version `{b['version']}` (the SHA-256 of its manifest.json, "
        f"as shipped), evaluated on {result['data']}: held-out real images, never seen in "
        "training or in choosing the edits.",
        "",
    ]
    if b.get("evaluated_version") and b["evaluated_version"] != b["version"]:
        changed = b.get("files_changed_after_evaluation") or []
        lines += [
            f"The measurements ran on version `{b['evaluated_version']}`; the finalize step "
            "then wrote these figures into the manifest (hence the new version). Files that "
            "differ from the evaluated ones: "
            + (
                ", ".join(f"`{f}`" for f in changed)
                if changed
                else "none (only the manifest's metrics)"
            )
            + ".",
            "",
        ]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += [
        "## Reconstruction",
        "",
        "| method | images | MSE | PSNR (dB) | SSIM | parameters |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key in RECON_ROWS:
        if key not in m:
            continue
        r = m[key]
        p = f"{r['parameters'] / 1e6:.3f} M" if r.get("parameters") else "-"
        lines.append(
            f"| {r['label']} | {r['n']} | {r['mse']:.5f} | {r['psnr']:.2f} | "
            f"{r['ssim']:.4f} | {p} |"
        )
    lines += [
        "",
        "MSE and PSNR on images scaled to [0, 1]; SSIM: 11x11 Gaussian window "
        "(sigma 1.5), valid borders, per channel. Downsample-upsample baselines: "
        "antialiased downsampling with the named filter, then upsampling with the same "
        "filter (PyTorch `interpolate`, align_corners=False).",
        "",
    ]
    if "psp" in m:
        lines += [
            "The pSp baseline was trained with the same loop, data, batch and step "
            "budget as ours (1,000 steps), not to its own convergence; its loss was "
            "still falling, so it is a same-budget comparison, not pSp's best. Training "
            "it to convergence was out of scope for this evaluation.",
            "",
        ]
    opt = m.get("optimisation")
    if opt and opt.get("reused_from"):
        lines += [
            f"The optimisation ceiling row is reused from the previous evaluation run "
            f"of the same generator and the same {opt['n']} test images "
            f"(`{opt['reused_from']}`; the generator's weights are unchanged), not "
            "re-measured here; ours and pSp on that subset are re-measured.",
            "",
        ]
    lines += _timing_lines(result)
    lines += _edit_lines(result)
    if "grid" in result:
        rel = os.path.relpath(result["grid"], out.parent)
        lines += [
            "",
            "## Samples",
            "",
            f"![quality grid]({rel})",
            "",
            "Rows, top to bottom: " + ", ".join(_row_names(result)) + ". Columns: "
            "8 test images of the optimisation subset; each edit row shows the same "
            "items moved towards the other side of the edit's attribute at its default "
            "strength (with the Fuser).",
            "",
        ]
    lines += ["", "## Goals", ""]
    lines += goal_lines(result)
    if extra:
        lines += ["", "## Notes and provenance", ""]
        for k, v in extra.items():
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                lines.append(f"### {k}")
                lines.append("")
                lines += [f"- {x}" for x in v]
                lines.append("")
            elif isinstance(v, list | dict):
                lines.append(f"- **{k}**:")
                lines += ["", "```json", json.dumps(v, indent=2), "```", ""]
            else:
                lines.append(f"- **{k}**: {v}")
    lines += [
        "",
        "## Machine",
        "",
        "```json",
        json.dumps(result["machine"], indent=2),
        "```",
        "",
        f"Evaluation wall time: {result['wall_s']:.0f} s.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + _sections_after_the_report(out))
    return out


def _sections_after_the_report(out: Path) -> str:
    """What other commands and people wrote below the generated report (alignment,
    domain gate, refine ...): kept when the report is re-rendered."""
    if not out.exists():
        return ""
    old = out.read_text(encoding="utf-8")
    match = re.search(r"^Evaluation wall time: [^\n]*\n", old, flags=re.M)
    return old[match.end() :] if match else ""


def _timing_lines(result: dict[str, Any]) -> list[str]:
    m = result["methods"]
    lines = ["## Speed", ""]
    load = result.get("load") or {}
    lat = result.get("latency")
    rows = ["| measurement | ours | pSp |", "|---|---:|---:|"]
    if lat:
        inv = lat["invert"]
        rows.append(
            f"| single image, batch 1, one PIL upload: invert (median / p90 of "
            f"{lat['repeats']}) | {inv['median_ms']:.1f} / {inv['p90_ms']:.1f} ms | - |"
        )
        if lat.get("invert_and_edit"):
            both = lat["invert_and_edit"]
            edit = ", ".join(f"{k} {v:g}" for k, v in lat["edit"].items())
            rows.append(
                f"| single image: invert + one edit ({edit}), median / p90 | "
                f"{both['median_ms']:.1f} / {both['p90_ms']:.1f} ms | - |"
            )
    if "ms_per_image" in m.get("ours", {}):
        psp = m.get("psp", {})
        bt = m["ours"].get("batch", "?")
        tp = (
            f"{1000 / psp['ms_per_image']:.0f} img/s ({psp['ms_per_image']:.2f} ms/img)"
            if "ms_per_image" in psp
            else "-"
        )
        rows.append(
            f"| batch throughput, batch {bt} ({m['ours']['n']} images) | "
            f"{1000 / m['ours']['ms_per_image']:.0f} img/s "
            f"({m['ours']['ms_per_image']:.2f} ms/img) | {tp} |"
        )
    opt = m.get("optimisation")
    if opt and "ms_per_image" in opt:
        when = " - previous run, quieter machine" if opt.get("reused_from") else ""
        rows.append(
            f"| optimisation ceiling ({opt['n']} images, batched{when}) | "
            f"{opt['ms_per_image']:.0f} ms/img | - |"
        )
    lines += rows
    lines += [
        "",
        "Wall clock on the CPU machine described below (no GPU), "
        f"{result['machine'].get('threads')} torch threads. The machine is shared with "
        "other developers' jobs, so every time here is inflated by their load:",
    ]
    for when in ("before", "after"):
        if when in load:
            lines.append(
                f"- load {when} measuring: `{load[when].get('uptime') or ''}` "
                f"(load average {load[when]['loadavg']})"
            )
    if lat and lat.get("load"):
        lines.append(f"- load at the single-image timing: `{lat['load'].get('uptime')}`")
    lines.append("")
    return lines


def _edit_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Edits",
        "",
        "Each test image is moved towards the other side of the edit's attribute at the "
        "edit's default strength (images above the attribute's threshold by -strength, "
        "the others by +strength), so both signs are exercised. *Success*: for category "
        "edits the classifier's group label flips; for attribute edits the measured "
        "attribute (brightness: mean grey of the item's pixels on [0, 1]; bulk: fraction "
        "of the frame covered by the item, grey > 0.1) moves in the requested direction "
        "by at least the stated minimum. *Class kept*: the 10-way class is unchanged. "
        "*Change*: mean change of the attribute in the requested direction (category: "
        "the success rate). *Tone*: mean |change of item brightness|, and the share "
        "within the tolerance.",
        "",
        "| edit | kind | sensitive | strength | layers | Fuser | success | class kept | "
        "change | tone: mean abs change / kept | SSIM to input |",
        "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    rules = []
    for name, row in result["edits"].items():
        layers = (
            "all" if row.get("layers") is None else f"{row['layers'][0]}-{row['layers'][1] - 1}"
        )
        rules.append(f"- `{name}`: success = {row.get('success_rule', 'label flips')}.")
        if row.get("changes"):
            f = row["fuser"]
            rules.append(
                f"  Declares it changes {row['changes']}; preserves {row['preserves']}. "
                f"Measured here (with the Fuser): success {f['success'] * 100:.1f}%, class "
                f"kept {f['class_kept'] * 100:.1f}%, tone within the tolerance "
                f"{f['tone_kept'] * 100:.1f}%."
            )
        for key, label in (("fuser", "with"), ("no_fuser", "without")):
            r = row[key]
            s = f"{r['ssim_to_input']:.3f}" if r.get("ssim_to_input") is not None else "-"
            change = (
                f"{r['mean_change']:+.3f}"
                if row.get("kind") == "attribute"
                else f"{r['success'] * 100:.1f}%"
            )
            lines.append(
                f"| {name} | {row.get('kind', '-')} | {'yes' if row['sensitive'] else 'no'} "
                f"| {row['strength']:g} | {layers} | {label} | {r['success'] * 100:.1f}% | "
                f"{r['class_kept'] * 100:.1f}% | {change} | "
                f"{r.get('mean_abs_tone_change', float('nan')):.3f} / "
                f"{r.get('tone_kept', float('nan')) * 100:.0f}% | {s} |"
            )
    tol = next((row.get("tone_tolerance") for row in result["edits"].values()), None)
    lines += ["", *rules]
    if tol is not None:
        lines.append(f"- tone tolerance: |change of mean item brightness| <= {tol:g}.")
    lines.append("")
    return lines


def goal_lines(result: dict[str, Any]) -> list[str]:
    m = result["methods"]
    lines = []
    if "optimisation" in m and "ours_on_opt_subset" in m:
        gap = m["optimisation"]["psnr"] - m["ours_on_opt_subset"]["psnr"]
        lines.append(
            f"- Encoder + Fuser within 1.5 dB of the optimisation ceiling: "
            f"**{'met' if gap <= 1.5 else 'missed'}** - gap {gap:.2f} dB on the same "
            f"{m['optimisation']['n']} images"
            + (f" (over by {gap - 1.5:.2f} dB)" if gap > 1.5 else "")
            + "."
        )
    if "down16_bilinear" in m:
        base = max(m["down16_bilinear"]["psnr"], m.get("down16_bicubic", {}).get("psnr", -1e9))
        d = m["ours"]["psnr"] - base
        ds = m["ours"]["ssim"] - max(
            m["down16_bilinear"]["ssim"], m.get("down16_bicubic", {}).get("ssim", -1e9)
        )
        lines.append(
            f"- Encoder + Fuser >= 3 dB above the better 16x16 downsample baseline: "
            f"**{'met' if d >= 3 else 'missed'}** - {d:+.2f} dB PSNR, {ds:+.4f} SSIM."
        )
    if "psp" in m:
        dp = m["ours"]["psnr"] - m["psp"]["psnr"]
        ds = m["ours"]["ssim"] - m["psp"]["ssim"]
        lines.append(
            f"- Ours vs the same-budget pSp baseline: PSNR {dp:+.2f} dB, SSIM {ds:+.4f}, "
            f"parameters {m['ours']['parameters'] / 1e6:.2f} M vs "
            f"{m['psp']['parameters'] / 1e6:.2f} M (pSp not converged, see above)."
        )
    for name, row in result["edits"].items():
        r = row["fuser"]
        s = r["success"]
        if row.get("kind") == "category":
            ok = s >= 0.8
            lines.append(
                f"- Category edit `{name}` succeeds on >= 80% at its default strength "
                f"({row['strength']:g}): **{'met' if ok else 'missed'}** - {s * 100:.1f}%; "
                f"tone kept within {row.get('tone_tolerance', 0.1):g} for "
                f"{r.get('tone_kept', 0) * 100:.0f}% (mean |change| "
                f"{r.get('mean_abs_tone_change', 0):.3f})."
            )
        else:
            k = r["class_kept"]
            ok = s >= 0.8 and k >= 0.8
            lines.append(
                f"- Edit `{name}` moves its attribute for >= 80% and keeps the class for "
                f">= 80% at its default strength ({row['strength']:g}): "
                f"**{'met' if ok else 'missed'}** - moved {s * 100:.1f}%, class kept "
                f"{k * 100:.1f}%."
            )
    return lines


# -- CLI ---------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", default="inversion/bundles/demo", type=Path)
    p.add_argument("--classifier", default="inversion/bundles/demo_eval/classifier.pt", type=Path)
    p.add_argument(
        "--psp",
        default="inversion/bundles/demo_eval/psp_encoder.pt",
        type=Path,
        help="pSp baseline export (encoder.pt from `train encoder --arch psp`)",
    )
    p.add_argument("--out", default="docs/quality.md", type=Path)
    p.add_argument("--grid", default="docs/images/quality_grid.png", type=Path)
    p.add_argument("--json", default=None, type=Path, help="also write the raw results")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--opt-n", type=int, default=200)
    p.add_argument("--opt-steps", type=int, default=500)
    p.add_argument("--opt-lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--extra",
        type=Path,
        default=None,
        help="JSON object of training facts to include in the report",
    )
    p.add_argument(
        "--reuse-optimisation",
        type=Path,
        default=None,
        help="take the optimisation ceiling from this earlier evaluation of the "
        "same generator (manifest.json or evaluation JSON) instead of "
        "re-running it",
    )
    p.add_argument("--latency-repeats", type=int, default=20)
    p.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="a copy of the bundle this one replaces: its reconstruction is measured on "
        "the same images and shown beside ours",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="re-render the report from a saved --json result (no measuring)",
    )


def run(args: argparse.Namespace) -> int:
    extra = json.loads(Path(args.extra).read_text()) if args.extra else None
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        command = result.get("command") or (extra or {}).pop("evaluate command", None)
        write_report(result, args.out, extra=extra, command=command)
        print(f"wrote {args.out} from {args.from_json}")
        return 0
    result = evaluate(
        args.bundle,
        args.classifier,
        args.psp if args.psp and Path(args.psp).exists() else None,
        n=args.n,
        opt_n=args.opt_n,
        opt_steps=args.opt_steps,
        opt_lr=args.opt_lr,
        seed=args.seed,
        batch=args.batch,
        grid_path=args.grid,
        reuse_optimisation=args.reuse_optimisation,
        latency_repeats=args.latency_repeats,
        previous=args.previous,
    )
    # the arguments as given to inversion.cli.main (not sys.argv: main may be called in-process)
    command = "python -m inversion " + shlex.join(getattr(args, "_argv", ["evaluate"]))
    result["command"] = command
    write_report(result, args.out, extra=extra, command=command)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("methods", "edits", "wall_s")}, indent=2))
    return 0
