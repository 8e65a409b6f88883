"""The catalogue pipeline measured end to end at library level (issue 12's done-when).

``python -m inversion.pipeline_eval --n 200`` places ``n`` held-out Fashion-MNIST test
items on 512x512 catalogue-style canvases (:func:`inversion.align.synthetic.random_canvas`:
random position, scale and background tone) and runs, for each canvas and each catalog
edit at its default strength, what a job does: ``object`` alignment -> inversion of the
aligned crop -> edit -> paste-back into the photo (:mod:`inversion.align`,
:class:`~inversion.inverter.Inverter`, :func:`inversion.pasteback.paste_back`). It
reports

* the output size (must be the photo's, 512x512);
* the fraction of photo pixels outside the feathered mask that changed (must be 0);
* edit success and preservation as docs/quality.md defines them (the demo classifier,
  :func:`inversion.evaluate.edit_metrics`' rules), measured on the *result photo*: the
  pasted-back photo is cropped again with the same transform and classified, against the
  labels of the original crop;
* the domain gate's flag rate (:class:`inversion.domain.DomainGate`, fitted and
  calibrated on the validation split as ``python -m inversion.domain`` does) on these
  canvases and on the out-of-domain probes (:func:`inversion.domain.out_of_domain_probes`:
  noise, text pages, the package-shipped portrait), each put through the same object
  alignment; a probe on which alignment finds no subject counts as stopped.

``--section docs/quality.md`` appends (or replaces) the "Catalogue photos, end to end"
section.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["evaluate_pipeline", "section_lines", "main"]

SECTION = "## Catalogue photos, end to end"


def _crop_tensor(crops: Sequence[Any]) -> torch.Tensor:
    from inversion.preprocess import image_to_tensor

    return image_to_tensor(list(crops), crops[0].size[0])


def evaluate_pipeline(
    bundle_path: str | Path,
    classifier_path: str | Path,
    n: int = 200,
    seed: int = 0,
    feather: float = 0.1,
    gate_fit: int = 2000,
    gate_calib: int = 500,
    log: Any = print,
    refine_steps: Sequence[int] = (),
    ceiling_n: int = 0,
    ceiling_steps: int = 500,
    grid: str | Path | None = None,
    quality_only: bool = False,
) -> dict[str, Any]:
    from inversion.align import AlignmentError, align
    from inversion.align.synthetic import random_canvas
    from inversion.domain import DomainGate, out_of_domain_probes
    from inversion.evaluate import _measured_edits, machine_info
    from inversion.inverter import Inverter
    from inversion.pasteback import paste_back, paste_mask
    from inversion.training.classifier import ATTRIBUTES, CATEGORY_GROUPS, load_classifier
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx
    from inversion.training.edit_measures import MIN_CHANGE, measure_edit, summarise

    t0 = time.time()
    inverter = Inverter.from_path(bundle_path, device="cpu", batch_size=200)
    size = inverter.input_size
    clf = load_classifier(classifier_path)
    raw = read_idx(ensure_fashion_mnist() / FASHION_FILES["test"][0])
    pick = np.random.default_rng(seed).permutation(raw.shape[0])[:n]
    rng = np.random.default_rng(seed + 1)
    photos, transforms, params = [], [], []
    for i in pick:
        photo, _, p = random_canvas(raw[i], rng)
        photos.append(photo)
        transforms.append(align(photo, "object", size))
        params.append(p)
    crops = [t.crop(p) for t, p in zip(transforms, photos, strict=True)]
    x = _crop_tensor(crops)
    inv = inverter.invert(x)
    log(f"aligned and inverted {n} canvases ({time.time() - t0:.0f} s)")
    if quality_only:
        # refine vs fast vs the ceiling on the ceiling's subset only (the 500-step
        # ceiling dominates the CPU; the edits and the gate are skipped)
        sub = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))[:ceiling_n]
        sub = sub.sort().values
        return {
            "bundle": {"path": str(bundle_path), "version": inverter.version},
            "data": f"fashion-mnist:test ({n} of 10000, seed {seed}) on 512x512 canvases "
            f"(seed {seed + 1}); subset of {len(sub)} (seed {seed + 2}): {sub.tolist()}",
            "n": n,
            "quality": refine_on_crops(
                inverter, inv[sub], x[sub], refine_steps, len(sub), ceiling_steps, seed, log
            ),
            "machine": machine_info(),
            "wall_s": round(time.time() - t0, 1),
        }

    s0 = clf.attributes(x)
    masks = [paste_mask(t, feather) == 0 for t in transforms]
    sizes: set[tuple[int, int]] = set()
    outside_changed = outside_total = inside_changed = 0
    naive_outside_changed = 0
    shown: dict[str, list[Any]] = {}  # edit -> result photos of the grid's canvases
    edits: dict[str, Any] = {}
    measured = _measured_edits(inverter.catalog, ATTRIBUTES)
    first_edit = measured[0][0].name if measured else None
    for spec, attr in measured:
        name = spec.name
        category = attr in CATEGORY_GROUPS
        declared = (spec.measured or {}).get("min_change")
        min_change = None if category else float(declared or MIN_CHANGE.get(attr, 0.0))

        def model_edit(signed: torch.Tensor, name: str = name) -> torch.Tensor:
            out = torch.empty_like(inv.reconstruction)
            for value in signed.unique().tolist():
                idx = (signed == value).nonzero().flatten()
                out[idx] = inverter.edit(inv[idx], {name: value}).to(out.dtype)
            return out

        def photo_edit(signed: torch.Tensor, name: str = name) -> torch.Tensor:
            nonlocal outside_changed, outside_total, inside_changed, naive_outside_changed
            edited = model_edit(signed, name)
            results = []
            for i, (photo, t) in enumerate(zip(photos, transforms, strict=True)):
                out = paste_back(photo, t, edited[i], inv.reconstruction[i], feather=feather)
                sizes.add(out.size)
                a, b = np.asarray(photo), np.asarray(out)
                changed = (a != b).any(-1)
                outside_changed += int((changed & masks[i]).sum())
                outside_total += int(masks[i].sum())
                inside_changed += int((changed & ~masks[i]).sum())
                results.append(t.crop(out))
                if i < GRID_CANVASES:
                    shown.setdefault(name, []).append(out)
                if name == first_edit:
                    # trivial baseline: the model's edited output, resized to the photo
                    naive = np.asarray(_tensor_image(edited[i]).resize(photo.size, 3))
                    naive_outside_changed += int(((a != naive).any(-1) & masks[i]).sum())
            return _crop_tensor(results)

        strength = spec.default_strength
        # the pipeline: the result photo, cropped again, against the uploaded crop
        on_photo, _ = measure_edit(photo_edit, x, clf, attr, strength, s0, min_change)
        # the model's own edited crop against its reconstruction (as *Edits* measures)
        on_crop, _ = measure_edit(
            model_edit, inv.reconstruction, clf, attr, strength, None, min_change
        )
        # trivial baseline: the photo returned unchanged
        untouched, _ = measure_edit(lambda s: x, x, clf, attr, strength, s0, min_change)
        edits[name] = {
            "attribute": attr,
            "kind": "category" if category else "attribute",
            "min_change": min_change,
            "strength": strength,
            "sensitive": bool(spec.sensitive),
            **summarise(on_photo),
            "model_crop": summarise(on_crop),
            "no_edit": summarise(untouched),
        }
        log(f"{name}: {edits[name]}")
        log(f"outside the mask so far: {outside_changed} of {outside_total} changed")

    # The bundle's own gate when it ships one (calibrated on catalogue photos, see
    # python -m inversion.domain_eval); otherwise one fitted on bare validation items.
    shipped = getattr(inverter.bundle, "domain_gate", None)
    gate = shipped or _calibrated_gate(inverter, DomainGate, gate_fit, gate_calib)
    canvas_flags = [not r.in_domain for r in gate.assess(inv.wplus, inv.reconstruction, x, x)]
    ood: dict[str, Any] = {}
    for kind, images in out_of_domain_probes(seed).items():
        flagged = stopped = gate_alone = 0
        for img in images:
            # the gate on its own (whole image, as python -m inversion.domain measures it)
            whole = inverter.preprocess(img)
            w = inverter.invert(whole)
            gate_alone += int(not gate.assess(w.wplus, w.reconstruction, whole, whole)[0].in_domain)
            try:
                t = align(img, "object", size)
            except AlignmentError:
                stopped += 1
                continue
            crop = _crop_tensor([t.crop(img)])
            r = inverter.invert(crop)
            flagged += int(not gate.assess(r.wplus, r.reconstruction, crop, crop)[0].in_domain)
        ood[kind] = {
            "n": len(images),
            "stopped_at_alignment": stopped,
            "flagged": flagged,
            "caught": (stopped + flagged) / len(images),
            "gate_alone_flagged": gate_alone,
        }
    n_ood = sum(v["n"] for v in ood.values())
    quality = (
        refine_on_crops(inverter, inv, x, refine_steps, ceiling_n, ceiling_steps, seed, log)
        if refine_steps or ceiling_n
        else None
    )
    if grid is not None:
        save_pipeline_grid(grid, photos, transforms, shown, feather)
    return {
        "bundle": {"path": str(bundle_path), "version": inverter.version},
        "data": f"fashion-mnist:test ({n} of 10000, seed {seed}) on 512x512 canvases "
        f"(seed {seed + 1})",
        "n": n,
        "output_sizes": sorted(f"{w}x{h}" for w, h in sizes),
        "outside_mask_changed_fraction": outside_changed / max(outside_total, 1),
        "outside_mask_pixels": outside_total,
        "baseline_resized_output_outside_changed_fraction": naive_outside_changed
        / max(outside_total, 1),
        "baseline_edit": first_edit,
        "inside_mask_changed_pixels": inside_changed,
        "feather": feather,
        "edits": edits,
        "gate": {
            "fit": "the bundle's shipped gate" if shipped else f"fashion-mnist:val[:{gate_fit}]",
            "calibration": gate.thresholds.calibration,
            "thresholds": gate.thresholds.to_dict(),
            "canvas_flagged": float(np.mean(canvas_flags)),
            "out_of_domain": ood,
            "out_of_domain_caught": sum(
                v["stopped_at_alignment"] + v["flagged"] for v in ood.values()
            )
            / max(n_ood, 1),
        },
        "quality": quality,
        "machine": machine_info(),
        "wall_s": round(time.time() - t0, 1),
    }


GRID_CANVASES = 6


def _tensor_image(t: torch.Tensor) -> Any:
    from PIL import Image

    arr = t.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return Image.fromarray(arr.permute(1, 2, 0).numpy())


def refine_on_crops(
    inverter: Any,
    inv: Any,
    x: torch.Tensor,
    steps: Sequence[int],
    ceiling_n: int,
    ceiling_steps: int,
    seed: int,
    log: Any = print,
) -> dict[str, Any]:
    """fast vs refine vs the optimisation ceiling on the pipeline's own aligned crops.

    ``refine`` (each budget in ``steps``) runs on every crop; the ceiling (``ceiling_steps``
    Adam steps on W+ from the average latent, :func:`inversion.evaluate.optimise_inversion`)
    on a seeded subset of ``ceiling_n`` crops, since it costs about 20 s of CPU per image.
    The trivial baseline beside them: the crop shrunk to 16x16 and blown up again
    (bicubic). The gap figure: the fraction of (ceiling - fast) PSNR each refine budget
    closes on the subset.
    """
    from inversion.evaluate import downsample_upsample, optimise_inversion, recon_metrics
    from inversion.refine import refine, refine_target

    target = refine_target(inverter, x)
    if inv.reconstruction.shape[-1] != target.shape[-1]:
        target = x
    n = target.shape[0]
    sub = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))[:ceiling_n]
    sub = sub.sort().values

    def row(label: str, rec: torch.Tensor, tgt: torch.Tensor, cpu: float | None) -> dict:
        m = recon_metrics(rec, tgt)
        out = {
            "label": label,
            "n": int(tgt.shape[0]),
            "psnr": float(m["psnr"].mean()),
            "ssim": float(m["ssim"].mean()),
            "psnr_each": m["psnr"].tolist(),
        }
        if cpu is not None:
            out["cpu_ms_per_image"] = cpu / tgt.shape[0] * 1000
        log(f"{label}: psnr {out['psnr']:.2f} ssim {out['ssim']:.4f}")
        return out

    rows: dict[str, Any] = {}
    recs: dict[str, torch.Tensor] = {"fast": inv.reconstruction}
    rows["fast"] = row("fast (encoder + Fuser)", inv.reconstruction, target, None)
    rows["down16"] = row(
        "16x16 downsample-upsample (bicubic)",
        downsample_upsample(target, 16, "bicubic"),
        target,
        None,
    )
    for k in steps:
        c0 = time.process_time()
        refined = refine(inverter, inv, target, int(k), seed=seed)
        rows[f"refine_{k}"] = row(
            f"refine, {k} steps", refined.reconstruction, target, time.process_time() - c0
        )
        recs[f"refine_{k}"] = refined.reconstruction
    on_sub = {
        key: float(torch.tensor(r["psnr_each"])[sub].mean()) if len(sub) else None
        for key, r in rows.items()
    }
    gap: dict[str, Any] = {}
    if len(sub) and ceiling_steps:
        c0 = time.process_time()
        rec = optimise_inversion(
            inverter.generator, inverter.latent_avg, target[sub], steps=ceiling_steps
        )
        rows["ceiling"] = row(
            f"optimisation ceiling, {ceiling_steps} Adam steps on W+",
            rec,
            target[sub],
            time.process_time() - c0,
        )
        on_sub["ceiling"] = rows["ceiling"]["psnr"]
        full = on_sub["ceiling"] - on_sub["fast"]
        for key in rows:
            if key.startswith("refine_"):
                closed = on_sub[key] - on_sub["fast"]
                gap[key] = {
                    "gained_db": closed,
                    "gap_db": full,
                    "fraction_closed": closed / full if full > 0 else None,
                }
    for r in rows.values():
        r.pop("psnr_each")
    return {
        "rows": rows,
        "ceiling_subset": {"n": int(len(sub)), "seed": seed + 2, "steps": ceiling_steps},
        "psnr_on_ceiling_subset": on_sub,
        "gap_closed": gap,
    }


def save_pipeline_grid(
    path: str | Path,
    photos: Sequence[Any],
    transforms: Sequence[Any],
    shown: dict[str, list[Any]],
    feather: float,
    tile: int = 192,
) -> Path:
    """One row per canvas: the photo, then each edit's result photo, then its change
    (|result - photo| x 4) with the feathered mask's edge drawn in red -- what a user
    downloads, and where it differs from what they uploaded."""
    from PIL import Image, ImageDraw

    from inversion.pasteback import paste_mask

    names = list(shown)
    rows = min(len(photos), GRID_CANVASES, *(len(v) for v in shown.values()))
    cols = 1 + 2 * len(names)
    sheet = Image.new("RGB", (cols * tile, rows * tile), (255, 255, 255))
    for r in range(rows):
        photo = photos[r]
        sheet.paste(photo.resize((tile, tile)), (0, r * tile))
        edge = paste_mask(transforms[r], feather) > 0
        for c, name in enumerate(names):
            out = shown[name][r]
            sheet.paste(out.resize((tile, tile)), ((1 + 2 * c) * tile, r * tile))
            diff = np.abs(np.asarray(out, np.int16) - np.asarray(photo, np.int16)).max(-1)
            d = Image.fromarray(np.clip(diff * 4, 0, 255).astype(np.uint8)).convert("RGB")
            draw = ImageDraw.Draw(d)
            ys, xs = np.nonzero(edge)
            if len(xs):
                draw.rectangle(
                    (xs.min(), ys.min(), xs.max(), ys.max()), outline=(255, 0, 0), width=3
                )
            sheet.paste(d.resize((tile, tile)), ((2 + 2 * c) * tile, r * tile))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _calibrated_gate(inverter: Any, gate_cls: Any, fit: int, calib: int) -> Any:
    """Fit on val[:fit], calibrate on val[fit:fit+calib] (as python -m inversion.domain)."""
    from inversion.training.data import load_fashion_mnist

    val, _ = load_fashion_mnist("val", size=inverter.input_size, limit=fit + calib)
    fit_inv = inverter.invert(val[:fit])
    cal = inverter.invert(val[fit:])
    return gate_cls.calibrate(
        fit_inv.wplus,
        cal.wplus,
        calib_reconstruction=cal.reconstruction,
        calib_target=val[fit:],
        calibration=f"fashion-mnist:val[{fit}:{fit + calib}]",
    )


def section_lines(result: dict[str, Any], command: str) -> list[str]:
    g = result["gate"]
    lines = [
        SECTION,
        "",
        f"{result['data']}: each canvas goes through `object` alignment -> inversion "
        "of the aligned crop -> each supervised catalog edit at its default strength "
        "(towards the other side of the attribute, as in *Edits* above) -> paste-back "
        f"(`delta` mode, feather {result['feather']:g} of the crop side). Canvases: a "
        "light grey item on a dark background of random tone (0-60; the demo model's "
        "colour domain), random scale (4-10x, 112-280 px) and position, sensor noise, "
        "JPEG. Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        f"- Output size: {', '.join(result['output_sizes'])} (every result has the photo's size).",
        f"- Pixels outside the feathered mask that changed: "
        f"**{result['outside_mask_changed_fraction'] * 100:.4f}%** of "
        f"{result['outside_mask_pixels']:,} (goal 0); pixels inside it that changed: "
        f"{result['inside_mask_changed_pixels']:,}.",
        "",
        "Edit success and preservation measured on the *result photo* (cropped again "
        "with the same transform and classified, against the original crop's labels):",
        "",
        "| edit | sensitive | strength | success | class kept | tone kept | "
        "success on the model's crop | success, photo returned unchanged |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in result["edits"].items():
        lines.append(
            f"| {name} | {'yes' if e['sensitive'] else 'no'} | {e['strength']:g} | "
            f"{e['success'] * 100:.1f}% | {e['class_kept'] * 100:.1f}% | "
            f"{e['tone_kept'] * 100:.1f}% | {e['model_crop']['success'] * 100:.1f}% | "
            f"{e['no_edit']['success'] * 100:.1f}% |"
        )
    lines += [
        "",
        f"Domain gate (fitted on {g['fit']}, thresholds calibrated on "
        f"{g['calibration']} at the {g['thresholds'].get('quantile', 0.99):g} quantile: "
        f"OOD score <= "
        f"{g['thresholds']['ood_max']:.1f}, PSNR >= "
        f"{(g['thresholds'].get('psnr_min') or 0):.2f} dB, SSIM >= "
        f"{(g['thresholds'].get('ssim_min') or 0):.3f}):",
        "",
        f"- catalogue canvases flagged: **{g['canvas_flagged'] * 100:.1f}%** (goal <= 5%)",
        f"- out-of-domain photos stopped or flagged: "
        f"**{g['out_of_domain_caught'] * 100:.1f}%** (goal >= 95%):",
    ]
    for kind, v in g["out_of_domain"].items():
        lines.append(
            f"  - {kind}: {v['n']} images, {v['stopped_at_alignment']} stopped at "
            f"alignment (no subject found), {v['flagged']} flagged by the gate; "
            f"the gate alone on the whole image flags {v['gate_alone_flagged']} of "
            f"{v['n']}"
        )
    lines += [
        "",
        f"Evaluation wall time {result['wall_s']:.0f} s on "
        f"{result['machine']['cpu_count']} shared CPU cores.",
        "",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the catalogue pipeline end to end; print JSON, optionally write the section."""
    from inversion.evaluate_refine import append_section

    p = argparse.ArgumentParser(prog="python -m inversion.pipeline_eval", description=main.__doc__)
    p.add_argument("--bundle", default="inversion/bundles/demo", type=Path)
    p.add_argument("--classifier", default="inversion/bundles/demo_eval/classifier.pt", type=Path)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feather", type=float, default=0.1)
    p.add_argument("--gate-fit", type=int, default=2000)
    p.add_argument("--gate-calib", type=int, default=500)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--refine-steps",
        default="",
        help="comma-separated refine budgets to run on every aligned crop (e.g. 10,25)",
    )
    p.add_argument(
        "--ceiling-n",
        type=int,
        default=0,
        help="crops (seeded subset) for the 500-step optimisation ceiling; 0: none",
    )
    p.add_argument("--ceiling-steps", type=int, default=500)
    p.add_argument("--grid", type=Path, default=None, help="save a grid of result photos here")
    p.add_argument(
        "--quality-only",
        action="store_true",
        help="only fast vs refine vs the ceiling, on the --ceiling-n subset of the crops",
    )
    p.add_argument(
        "--section",
        type=Path,
        default=None,
        help="append/replace the section in this markdown file (docs/quality.md)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="no measuring: write --section from a saved --json result",
    )
    args = p.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        if args.section:
            append_section(args.section, section_lines(result, result["command"]), SECTION)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    result = evaluate_pipeline(
        args.bundle,
        args.classifier,
        n=args.n,
        seed=args.seed,
        feather=args.feather,
        gate_fit=args.gate_fit,
        gate_calib=args.gate_calib,
        refine_steps=[int(k) for k in args.refine_steps.split(",") if k.strip()],
        ceiling_n=args.ceiling_n,
        ceiling_steps=args.ceiling_steps,
        grid=args.grid,
        quality_only=args.quality_only,
    )
    shown = [a for a in (argv if argv is not None else sys.argv[1:])]
    command = "python -m inversion.pipeline_eval " + shlex.join(shown)
    result["command"] = command
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.section:
        append_section(args.section, section_lines(result, command), SECTION)
    print(
        json.dumps(
            {
                k: result.get(k)
                for k in (
                    "output_sizes",
                    "outside_mask_changed_fraction",
                    "edits",
                    "gate",
                    "quality",
                    "wall_s",
                )
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
