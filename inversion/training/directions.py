"""Demo edit directions and the edit catalog.

* Supervised (InterFaceGAN): sample ``n`` seeded z, map to W, render with the generator,
  score every attribute with the classifier (:mod:`inversion.training.classifier`),
  keep the top and bottom ``keep`` fraction as positives/negatives (clean labels, as
  InterFaceGAN does), fit a linear boundary in W (L2-regularised logistic regression on
  standardised codes, full-batch LBFGS) and take its unit normal. The direction is
  scaled by the standard deviation of W along it, so a strength of 1 is "one sigma".
* Default strengths are calibrated on a *separate* set of generated samples (never the
  real test images): the smallest strength (in 0.25 steps) at which the attribute's
  label flips for ``target_success`` of the samples moved towards the other side.
* Unsupervised: GANSpace principal components (``inversion.editing.ganspace``).

The catalog describes what each edit changes; category-changing edits are marked
``sensitive`` (they change what the product *is*, so the approval policy asks a human).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inversion.editing.catalog import EditCatalog, EditSpec
from inversion.modules.stylegan2 import Generator
from inversion.training.classifier import ATTRIBUTES, AttributeClassifier, load_classifier

__all__ = ["EDIT_INFO", "fit_boundary", "fit_directions", "load_generator", "add_arguments", "run"]

# attribute -> (edit name, description, sensitive, layer range as fractions of n_latent)
EDIT_INFO: dict[str, tuple[str, str, bool]] = {
    "footwear": (
        "footwear",
        "Turns the item into footwear (sandal / sneaker / boot) at positive strength, and "
        "footwear into clothing or a bag at negative strength. Changes the product "
        "category.",
        True,
    ),
    "long_sleeves": (
        "long_sleeves",
        "Moves the item towards long-sleeved upper garments (pullover, coat, shirt) at "
        "positive strength, away from them at negative strength. Changes the product "
        "category (e.g. t-shirt -> pullover).",
        True,
    ),
    "brightness": (
        "brightness",
        "Makes the item's fabric lighter (positive) or darker (negative); meant to keep "
        "its shape and category.",
        False,
    ),
    "bulk": (
        "bulk",
        "Makes the item fuller and wider, covering more of the frame (positive), or "
        "slimmer (negative); meant to keep its category.",
        False,
    ),
}


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, Tensor]:
    """(g_ema, latent_avg) from a ``generator.pt`` written by ``train generator``."""
    from inversion.modules.stylegan2 import GeneratorConfig

    ckpt = torch.load(path, map_location=device, weights_only=False)
    cfg = GeneratorConfig.from_dict(ckpt["config"])
    g = Generator(cfg).to(device)
    g.load_state_dict(ckpt["g_ema"])
    return g.eval(), ckpt["latent_avg"].to(device)


@torch.no_grad()
def sample_w_and_images(g: Generator, n: int, seed: int, batch: int = 256) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ws, imgs = [], []
    dev = next(g.parameters()).device
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), g.style_dim, generator=gen).to(dev)
        w = g.get_latent(z)
        ws.append(w.cpu())
        imgs.append(g.synthesis(w, noise="const").cpu())
    return torch.cat(ws), torch.cat(imgs)


def fit_boundary(w: Tensor, labels: Tensor, l2: float = 1e-3, iters: int = 100) -> Tensor:
    """Unit normal (in W) of a logistic-regression boundary separating labels 1/0."""
    w = w.double()
    mean, std = w.mean(0), w.std(0).clamp_min(1e-8)
    x = (w - mean) / std
    y = labels.double()
    coef = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef, bias], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        logits = x @ coef + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss = loss + l2 * coef.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    normal = coef.detach() / std  # back to raw W coordinates
    return (normal / normal.norm()).float()


@torch.no_grad()
def _flip_rate(g: Generator, clf: AttributeClassifier, w: Tensor, d: Tensor,
               name: str, strength: float, layers: tuple[int, int] | None,
               score0: Tensor) -> float:
    from inversion.editing.directions import apply_direction

    dev = next(g.parameters()).device
    sign = torch.where(score0 > 0, -1.0, 1.0)
    wp = w.unsqueeze(1).repeat(1, g.n_latent, 1).to(dev)
    moved = apply_direction(wp, d.to(dev), (sign * strength).to(dev), layers)
    imgs = torch.cat([g.synthesis(moved[i : i + 256], noise="const").cpu()
                      for i in range(0, moved.shape[0], 256)])
    s1 = clf.attributes(imgs)[name]
    return float(((s1 > 0) != (score0 > 0)).float().mean())


def fit_directions(
    g: Generator,
    clf: AttributeClassifier,
    n_samples: int = 10_000,
    keep: float = 0.3,
    seed: int = 0,
    calib_samples: int = 512,
    target_success: float = 0.85,
    max_strength: float = 8.0,
    ganspace_components: int = 3,
    progress: bool = True,
) -> tuple[dict[str, Tensor], EditCatalog, dict[str, Any]]:
    from inversion.editing.ganspace import compute_ganspace

    t0 = time.time()
    w, imgs = sample_w_and_images(g, n_samples, seed)
    scores = clf.attributes(imgs)
    w_std = w.std(0)
    directions: dict[str, Tensor] = {}
    specs: list[EditSpec] = []
    report: dict[str, Any] = {"n_samples": n_samples, "keep": keep, "seed": seed,
                              "class_histogram": torch.bincount(scores["class"], minlength=10).tolist()}
    wc, _ = sample_w_and_images(g, calib_samples, seed + 1)
    with torch.no_grad():
        imgs_c = torch.cat([g.synthesis(wc[i : i + 256].to(next(g.parameters()).device),
                                        noise="const").cpu() for i in range(0, len(wc), 256)])
    scores_c = clf.attributes(imgs_c)
    for attr in ATTRIBUTES:
        s = scores[attr]
        order = torch.argsort(s)
        k = max(2, int(keep * len(s)))
        neg, pos = order[:k], order[-k:]
        xs = torch.cat([w[pos], w[neg]])
        ys = torch.cat([torch.ones(k), torch.zeros(k)])
        normal = fit_boundary(xs, ys)
        proj = (w - w.mean(0)) @ normal
        sigma = float(proj.std())
        direction = normal * sigma
        # train accuracy of the boundary on the kept samples (sanity)
        pred = ((xs - w.mean(0)) @ normal > (proj[pos].mean() + proj[neg].mean()) / 2).float()
        acc = float((pred == ys).float().mean())
        name, description, sensitive = EDIT_INFO[attr]
        dir_name = f"interfacegan_{attr}"
        directions[dir_name] = direction.contiguous()
        default = max_strength
        rates = {}
        strength = 0.5
        while strength <= max_strength + 1e-9:
            rate = _flip_rate(g, clf, wc, direction, attr, strength, None, scores_c[attr])
            rates[f"{strength:g}"] = round(rate, 3)
            if rate >= target_success:
                default = strength
                break
            strength += 0.5
        specs.append(EditSpec(
            name=name, description=description, direction=dir_name, space="w", layers=None,
            min_strength=-max_strength, max_strength=max_strength,
            default_strength=float(default), sensitive=sensitive,
        ))
        report[attr] = {"boundary_accuracy": round(acc, 4), "sigma": round(sigma, 4),
                        "default_strength": default, "calibration_flip_rate": rates,
                        "positive_fraction": round(float((s > 0).float().mean()), 4)}
        if progress:
            print(f"direction {attr}: acc {acc:.3f} default {default} rates {rates}", flush=True)
    space = compute_ganspace(g, n_samples=n_samples, n_components=ganspace_components,
                             seed=seed + 2)
    for i, (dname, d) in enumerate(space.directions().items()):
        directions[dname] = d.contiguous()
        specs.append(EditSpec(
            name=f"component_{i}",
            description=(
                f"Unsupervised GANSpace principal component {i} of W "
                f"({float(space.explained_variance_ratio[i]) * 100:.1f}% of W's variance); "
                "strength in standard deviations. Its effect is whatever varies most in "
                "the generator (often several of shape, category and tone at once), so "
                "it is marked sensitive."
            ),
            direction=dname, space="w", layers=None, min_strength=-3.0, max_strength=3.0,
            default_strength=1.0, sensitive=True,
        ))
    report["ganspace"] = {"explained_variance_ratio":
                          [round(float(v), 4) for v in space.explained_variance_ratio]}
    report["wall_s"] = round(time.time() - t0, 1)
    report["w_std_mean"] = round(float(w_std.mean()), 4)
    return directions, EditCatalog(specs), report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", required=True, type=Path, help="generator.pt")
    p.add_argument("--classifier", required=True, type=Path, help="classifier.pt")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--keep", type=float, default=0.3)
    p.add_argument("--calib-samples", type=int, default=512)
    p.add_argument("--target-success", type=float, default=0.85)
    p.add_argument("--components", type=int, default=3)
    p.add_argument("--max-strength", type=float, default=8.0,
                   help="edit range of the supervised directions (and calibration's limit)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from inversion.editing.directions import save_directions

    g, _ = load_generator(args.generator)
    clf = load_classifier(args.classifier)
    dirs, catalog, report = fit_directions(
        g, clf, n_samples=args.samples, keep=args.keep, seed=args.seed,
        calib_samples=args.calib_samples, target_success=args.target_success,
        ganspace_components=args.components, max_strength=args.max_strength,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    save_directions(dirs, args.out / "directions.safetensors")
    catalog.save(args.out / "catalog.json")
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


@torch.no_grad()
def calibrate_on_real(inverter: Any, images: Tensor, clf: AttributeClassifier,
                      target_success: float = 0.85, step: float = 0.5,
                      batch: int = 256) -> tuple[EditCatalog, dict[str, Any]]:
    """Re-pick supervised edits' default strengths on inversions of *real* images.

    ``images`` must be held out of evaluation (the recipe uses the ``val`` split). For
    each InterFaceGAN edit: the smallest strength (multiple of ``step``, within the
    edit's range) at which moving every image towards the other side of the boundary
    flips the classifier's label for ``target_success`` of them (with the Fuser), as
    the platform renders it.
    """
    import dataclasses

    inv = inverter.invert(images, batch_size=batch)
    s0 = clf.attributes(inv.reconstruction)
    specs, report = [], {}
    for spec in inverter.catalog:
        if not spec.direction.startswith("interfacegan_") or spec.layers is not None:
            specs.append(spec)
            continue
        attr = spec.direction[len("interfacegan_"):]
        pos = s0[attr] > 0
        rates: dict[str, float] = {}

        def flip_rate(strength: float, attr: str = attr, pos: Tensor = pos,
                      rates: dict[str, float] = rates,
                      name: str = spec.name) -> float:
            edited = torch.empty_like(inv.reconstruction)
            for mask, sign in ((pos, -1.0), (~pos, 1.0)):
                idx = mask.nonzero().flatten()
                if len(idx):
                    edited[idx] = inverter.edit(inv[idx], {name: sign * strength},
                                                batch_size=batch)
            rate = float(((clf.attributes(edited)[attr] > 0) != pos).float().mean())
            rates[f"{strength:g}"] = round(rate, 3)
            return rate

        # binary search over multiples of `step` (the flip rate grows with strength)
        lo, hi = 1, max(1, int(spec.max_strength / step))
        if flip_rate(hi * step) < target_success:
            chosen = hi * step
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                if flip_rate(mid * step) >= target_success:
                    hi = mid
                else:
                    lo = mid + 1
            chosen = hi * step
        specs.append(dataclasses.replace(spec, default_strength=float(chosen)))
        report[spec.name] = {"default_strength": chosen, "flip_rate": rates,
                             "n_images": int(images.shape[0])}
    return EditCatalog(specs), report


def with_fine_layer_edits(catalog: EditCatalog, n_latent: int) -> EditCatalog:
    """Add ``tone``: the brightness boundary restricted to the finest style codes.

    The last two W+ codes (the final convolution and its to-RGB) set tone and texture
    but not the silhouette, so moving only them along the brightness normal lightens or
    darkens an item without changing what it is (the evaluation checks the class is
    kept). Not calibrated to flip the brightness label: it is the gentle, everyday edit.
    """
    if "tone" in catalog.names or "interfacegan_brightness" not in {s.direction for s in catalog}:
        return catalog
    tone = EditSpec(
        name="tone",
        description=(
            "Lightens (positive) or darkens (negative) the item's tone using only the two "
            f"finest style codes (W+ layers {n_latent - 2}-{n_latent - 1} of {n_latent}: the "
            "last convolution and its to-RGB), which leave the silhouette and the category "
            "alone; the brightness boundary's direction restricted to those layers."
        ),
        direction="interfacegan_brightness", space="w", layers=(n_latent - 2, n_latent),
        min_strength=-3.0, max_strength=3.0, default_strength=2.0, sensitive=False,
    )
    return EditCatalog([*catalog, tone])
