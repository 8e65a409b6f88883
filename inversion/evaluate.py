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
* for each supervised catalog edit at its default strength: success (the classifier's
  label for the attribute flips, moving each image towards the other side) and
  preservation (labels of the other supervised attributes unchanged), with and without
  the Fuser;
* an image grid (inputs, reconstructions by each method, edits).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ssim", "psnr", "recon_metrics", "optimise_inversion", "projector_lr_scale",
           "evaluate", "write_report", "add_arguments", "run"]


# -- metrics -----------------------------------------------------------------------------


def _gaussian(window: int, sigma: float) -> Tensor:
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0) -> Tensor:
    """Per-image SSIM of (B, C, H, W) images in [0, data_range] (Gaussian window)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
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


def optimise_inversion(g: torch.nn.Module, latent_avg: Tensor, images: Tensor, steps: int = 500,
                       lr: float = 0.05, batch: int = 200,
                       progress: Callable[[int], None] | None = None) -> Tensor:
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
def _encode_render(encoder: torch.nn.Module, g: torch.nn.Module, latent_avg: Tensor,
                   images: Tensor, batch: int) -> Tensor:
    out = []
    size = encoder.cfg.input_size
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        w = encoder(x).wplus + latent_avg.reshape(1, 1, -1)
        out.append(g.synthesis(w, noise="const"))
    return torch.cat(out)


def _timed(fn: Callable[[], Tensor]) -> tuple[Tensor, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# -- edits -------------------------------------------------------------------------------


def _supervised_edits(catalog: Any, attributes: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(edit name, attribute, default strength) for catalog edits backed by a boundary."""
    out = []
    for spec in catalog:
        if spec.direction.startswith("interfacegan_"):
            attr = spec.direction[len("interfacegan_"):]
            if attr in attributes:
                out.append((spec.name, attr, spec.default_strength))
    return out


@torch.no_grad()
def edit_metrics(inverter: Any, inversion: Any, clf: Any, attributes: tuple[str, ...],
                 catalog: Any, batch: int) -> tuple[dict[str, Any], dict[str, Tensor]]:
    recon = inversion.reconstruction
    s0 = clf.attributes(recon)
    results: dict[str, Any] = {}
    samples: dict[str, Tensor] = {}
    for name, attr, strength in _supervised_edits(catalog, attributes):
        pos = s0[attr] > 0
        row: dict[str, Any] = {"attribute": attr, "strength": strength,
                               "sensitive": bool(catalog[name].sensitive)}
        for use_fuser in (True, False):
            edited = torch.empty_like(recon)
            for mask, sign in ((pos, -1.0), (~pos, 1.0)):
                idx = mask.nonzero().flatten()
                if len(idx) == 0:
                    continue
                edited[idx] = inverter.edit(inversion[idx] if len(idx) > 1 else
                                            inversion[int(idx[0]) : int(idx[0]) + 1],
                                            {name: sign * strength}, use_fuser=use_fuser,
                                            batch_size=batch).to(recon.dtype)
            s1 = clf.attributes(edited)
            success = ((s1[attr] > 0) != pos).float()
            others = [a for a in attributes if a != attr]
            kept = torch.stack([((s1[a] > 0) == (s0[a] > 0)).float() for a in others])
            same_class = (s1["class"] == s0["class"]).float()
            key = "fuser" if use_fuser else "no_fuser"
            row[key] = {
                "success": float(success.mean()),
                "preservation": float(kept.mean()),
                "class_kept": float(same_class.mean()),
                "ssim_to_input": float(ssim(edited.clamp(-1, 1).add(1).div(2),
                                            inversion_input(inversion).add(1).div(2)).mean())
                if getattr(inversion, "_input", None) is not None else None,
            }
            if use_fuser:
                samples[name] = edited
        results[name] = row
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

    # (a) ours
    inv, t_ours = _timed(lambda: inverter.invert(images, batch_size=batch))
    inv._input = images
    m_ours = recon_metrics(inv.reconstruction, images)
    log(f"ours: {_summary(m_ours)} {t_ours / n * 1000:.2f} ms/image")
    params_ours = sum(p.numel() for p in inverter.encoder.parameters())
    params_fuser = sum(p.numel() for p in inverter.fuser.parameters())
    methods: dict[str, Any] = {
        "ours": {"label": "MambaStyle encoder + Fuser (ours)", **_summary(m_ours),
                 "ms_per_image": t_ours / n * 1000, "parameters": params_ours + params_fuser,
                 "n": n},
    }
    # ours without the Fuser (W+ only), for reference
    with torch.no_grad():
        rec_nf = torch.cat([g.synthesis(inv.wplus[i : i + batch], noise="const")
                            for i in range(0, n, batch)])
    methods["ours_no_fuser"] = {"label": "MambaStyle encoder, W+ only (no Fuser)",
                                **_summary(recon_metrics(rec_nf, images)),
                                "parameters": params_ours, "n": n}
    recs = {"ours": inv.reconstruction}

    # (b) pSp
    if psp_path is not None:
        from inversion.training.train_encoder import load_encoder_export

        _, psp, _, _, _ = load_encoder_export(psp_path)
        rec_psp, t_psp = _timed(lambda: _encode_render(psp, g, latent_avg, images, batch))
        m_psp = recon_metrics(rec_psp, images)
        methods["psp"] = {"label": "pSp baseline (same data and budget)", **_summary(m_psp),
                          "ms_per_image": t_psp / n * 1000,
                          "parameters": sum(p.numel() for p in psp.parameters()), "n": n}
        recs["psp"] = rec_psp
        log(f"psp: {methods['psp']}")

    # (c) optimisation on a subset (and ours on the same subset, for the gap)
    if opt_n > 0 and opt_steps > 0:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=opt_steps * math.ceil(opt_n / 200), desc="optimisation")
        rec_opt, t_opt = _timed(lambda: optimise_inversion(
            g, latent_avg, images[opt_idx], steps=opt_steps, lr=opt_lr, batch=200,
            progress=(bar.update if bar is not None else None)))
        if bar is not None:
            bar.close()
        m_opt = recon_metrics(rec_opt, images[opt_idx])
        methods["optimisation"] = {
            "label": f"optimisation ({opt_steps} Adam steps on W+, batched)",
            **_summary(m_opt), "ms_per_image": t_opt / opt_n * 1000, "n": opt_n,
            "parameters": 0,
        }
        sub = {k: float(v[opt_idx].mean()) for k, v in m_ours.items()}
        methods["ours_on_opt_subset"] = {"label": "ours on the optimisation subset", **sub,
                                         "n": opt_n}
        if "psp" in methods:
            methods["psp_on_opt_subset"] = {
                "label": "pSp on the optimisation subset",
                **{k: float(v[opt_idx].mean()) for k, v in m_psp.items()}, "n": opt_n}
        recs["optimisation"] = rec_opt
        log(f"optimisation: {methods['optimisation']}")

    # edits
    edits, samples = edit_metrics(inverter, inv, clf, ATTRIBUTES, bundle.catalog, batch)
    log(f"edits: {json.dumps(edits)}")

    result = {
        "bundle": {"path": str(bundle_path), "version": bundle.version},
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
        result["grid"] = str(save_quality_grid(grid_path, images, recs, samples, opt_idx,
                                               bundle.catalog))
    return result


def save_quality_grid(path: str | Path, images: Tensor, recs: dict[str, Tensor],
                      edits: dict[str, Tensor], opt_idx: Tensor, catalog: Any,
                      n_cols: int = 8) -> Path:
    """Rows: input, each method's reconstruction, then each supervised edit (ours)."""
    from inversion.training.images import save_grid

    cols = opt_idx[:n_cols] if "optimisation" in recs else torch.arange(min(n_cols, len(images)))
    rows = [images[cols]]
    for key in ("ours", "psp"):
        if key in recs:
            rows.append(recs[key][cols])
    if "optimisation" in recs:
        rows.append(recs["optimisation"][: len(cols)])
    for name in edits:
        rows.append(edits[name][cols])
    return save_grid(torch.cat(rows), path, nrow=len(cols), scale=3)


def _row_names(result: dict[str, Any]) -> list[str]:
    names = ["input", "ours"]
    if "psp" in result["methods"]:
        names.append("pSp")
    if "optimisation" in result["methods"]:
        names.append("optimisation")
    names += [f"edit: {k}" for k in result["edits"]]
    return names


def write_report(result: dict[str, Any], out: str | Path, extra: dict[str, Any] | None = None,
                 command: str | None = None) -> Path:
    out = Path(out)
    m = result["methods"]
    lines = ["# Quality report: demo bundle", ""]
    lines += [
        f"Bundle `{result['bundle']['path']}` (version `{result['bundle']['version'][:16]}...`), "
        f"evaluated on {result['data']}: held-out real images, never seen in training.",
        "",
    ]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += ["## Reconstruction", "",
              "| method | images | MSE | PSNR (dB) | SSIM | time / image | parameters |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for key in ("ours", "ours_no_fuser", "psp", "optimisation", "ours_on_opt_subset",
                "psp_on_opt_subset"):
        if key not in m:
            continue
        r = m[key]
        t = f"{r['ms_per_image']:.2f} ms" if "ms_per_image" in r else "-"
        p = f"{r['parameters'] / 1e6:.3f} M" if r.get("parameters") else "-"
        lines.append(f"| {r['label']} | {r['n']} | {r['mse']:.5f} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.4f} | {t} | {p} |")
    lines += ["", "MSE and PSNR on images scaled to [0, 1]; SSIM: 11x11 Gaussian window "
              "(sigma 1.5), valid borders, per channel. Times: wall clock on the machine "
              "below, batched, CPU, shared with other jobs (see notes).", ""]
    lines += ["## Edits", "",
              "Each image is moved towards the other side of the attribute's boundary "
              "(positive images by -strength, negative by +strength) at the edit's default "
              "strength. *Success*: the classifier's label for the attribute flips. "
              "*Preservation*: fraction of the other supervised attributes whose label is "
              "unchanged. *Class kept*: the 10-way class is unchanged. *SSIM to input*: "
              "structural similarity of the edited image to the input photo.", "",
              "| edit | sensitive | strength | Fuser | success | preservation | class kept "
              "| SSIM to input |",
              "|---|---|---:|---|---:|---:|---:|---:|"]
    for name, row in result["edits"].items():
        for key, label in (("fuser", "with"), ("no_fuser", "without")):
            r = row[key]
            s = f"{r['ssim_to_input']:.4f}" if r.get("ssim_to_input") is not None else "-"
            lines.append(f"| {name} | {'yes' if row['sensitive'] else 'no'} | "
                         f"{row['strength']:g} | {label} | {r['success'] * 100:.1f}% | "
                         f"{r['preservation'] * 100:.1f}% | {r['class_kept'] * 100:.1f}% | {s} |")
    if "grid" in result:
        rel = os.path.relpath(result["grid"], out.parent)
        lines += ["", "## Samples", "", f"![quality grid]({rel})", "",
                  "Rows, top to bottom: " + ", ".join(_row_names(result)) + ". Columns: "
                  "test images of the optimisation subset.", ""]
    lines += ["", "## Goals", ""]
    lines += goal_lines(result)
    if extra:
        lines += ["", "## Training and provenance", ""]
        for k, v in extra.items():
            if isinstance(v, list | dict):
                lines.append(f"- **{k}**:")
                lines += ["", "```json", json.dumps(v, indent=2), "```", ""]
            else:
                lines.append(f"- **{k}**: {v}")
    lines += ["", "## Machine", "", "```json", json.dumps(result["machine"], indent=2), "```",
              "", f"Evaluation wall time: {result['wall_s']:.0f} s.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out


def goal_lines(result: dict[str, Any]) -> list[str]:
    m = result["methods"]
    lines = []
    if "optimisation" in m and "ours_on_opt_subset" in m:
        gap = m["optimisation"]["psnr"] - m["ours_on_opt_subset"]["psnr"]
        speed = m["optimisation"]["ms_per_image"] / max(m["ours"]["ms_per_image"], 1e-9)
        ok = gap <= 1.5 and speed >= 100
        lines.append(
            f"- Within 1.5 dB of the optimisation ceiling at >= 100x its speed: "
            f"**{'met' if ok else 'missed'}** - gap {gap:.2f} dB on the same {m['optimisation']['n']} "
            f"images ({'over by %.2f dB' % (gap - 1.5) if gap > 1.5 else 'within'}), "
            f"speed-up {speed:.0f}x.")
    if "psp" in m:
        dp = m["ours"]["psnr"] - m["psp"]["psnr"]
        ds = m["ours"]["ssim"] - m["psp"]["ssim"]
        fewer = m["ours"]["parameters"] < m["psp"]["parameters"]
        ok = dp >= 0 and ds >= 0 and fewer
        lines.append(
            f"- Ours >= pSp on PSNR and SSIM with fewer parameters: "
            f"**{'met' if ok else 'missed'}** - PSNR {dp:+.2f} dB, SSIM {ds:+.4f}, parameters "
            f"{m['ours']['parameters'] / 1e6:.2f} M vs {m['psp']['parameters'] / 1e6:.2f} M.")
    for name, row in result["edits"].items():
        s = row["fuser"]["success"]
        lines.append(
            f"- Edit `{name}` succeeds on >= 80% at its default strength ({row['strength']:g}): "
            f"**{'met' if s >= 0.8 else 'missed'}** - {s * 100:.1f}%"
            + ("" if s >= 0.8 else f" ({(0.8 - s) * 100:.1f} points short)") + ".")
    return lines


# -- CLI ---------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", default="inversion/bundles/demo", type=Path)
    p.add_argument("--classifier", default="inversion/bundles/demo_eval/classifier.pt",
                   type=Path)
    p.add_argument("--psp", default="inversion/bundles/demo_eval/psp_encoder.pt", type=Path,
                   help="pSp baseline export (encoder.pt from `train encoder --arch psp`)")
    p.add_argument("--out", default="docs/quality.md", type=Path)
    p.add_argument("--grid", default="docs/images/quality_grid.png", type=Path)
    p.add_argument("--json", default=None, type=Path, help="also write the raw results")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--opt-n", type=int, default=200)
    p.add_argument("--opt-steps", type=int, default=500)
    p.add_argument("--opt-lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", type=Path, default=None,
                   help="JSON object of training facts to include in the report")
    p.add_argument("--from-json", type=Path, default=None,
                   help="re-render the report from a saved --json result (no measuring)")


def run(args: argparse.Namespace) -> int:
    extra = json.loads(Path(args.extra).read_text()) if args.extra else None
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        command = result.get("command") or (extra or {}).pop("evaluate command", None)
        write_report(result, args.out, extra=extra, command=command)
        print(f"wrote {args.out} from {args.from_json}")
        return 0
    result = evaluate(args.bundle, args.classifier,
                      args.psp if args.psp and Path(args.psp).exists() else None,
                      n=args.n, opt_n=args.opt_n, opt_steps=args.opt_steps,
                      opt_lr=args.opt_lr, seed=args.seed, batch=args.batch, grid_path=args.grid)
    # the arguments as given to inversion.cli.main (not sys.argv: main may be called in-process)
    command = "python -m inversion " + shlex.join(getattr(args, "_argv", ["evaluate"]))
    result["command"] = command
    write_report(result, args.out, extra=extra, command=command)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("methods", "edits", "wall_s")}, indent=2))
    return 0
