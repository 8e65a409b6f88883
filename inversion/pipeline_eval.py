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
) -> dict[str, Any]:
    from inversion.align import AlignmentError, align
    from inversion.align.synthetic import random_canvas
    from inversion.domain import DomainGate, out_of_domain_probes
    from inversion.evaluate import _supervised_edits, machine_info
    from inversion.inverter import Inverter
    from inversion.pasteback import paste_back, paste_mask
    from inversion.training.classifier import ATTRIBUTES, load_classifier
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

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

    s0 = clf.attributes(x)
    masks = [paste_mask(t, feather) == 0 for t in transforms]
    sizes: set[tuple[int, int]] = set()
    outside_changed = outside_total = inside_changed = 0
    edits: dict[str, Any] = {}
    for name, attr, strength in _supervised_edits(inverter.catalog, ATTRIBUTES):
        pos = s0[attr] > 0
        edited = torch.empty_like(inv.reconstruction)
        for mask, sign in ((pos, -1.0), (~pos, 1.0)):
            idx = mask.nonzero().flatten().tolist()
            if idx:
                edited[idx] = inverter.edit(
                    inv[idx[0] : idx[0] + 1] if len(idx) == 1 else _select(inv, idx),
                    {name: sign * strength},
                )
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
        s1 = clf.attributes(_crop_tensor(results))
        success = ((s1[attr] > 0) != pos).float()
        others = [a for a in ATTRIBUTES if a != attr]
        kept = torch.stack([((s1[a] > 0) == (s0[a] > 0)).float() for a in others])
        edits[name] = {
            "attribute": attr,
            "strength": strength,
            "sensitive": bool(inverter.catalog[name].sensitive),
            "success": float(success.mean()),
            "preservation": float(kept.mean()),
            "class_kept": float((s1["class"] == s0["class"]).float().mean()),
        }
        log(f"{name}: {edits[name]}")

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
    return {
        "bundle": {"path": str(bundle_path), "version": inverter.version},
        "data": f"fashion-mnist:test ({n} of 10000, seed {seed}) on 512x512 canvases "
        f"(seed {seed + 1})",
        "n": n,
        "output_sizes": sorted(f"{w}x{h}" for w, h in sizes),
        "outside_mask_changed_fraction": outside_changed / max(outside_total, 1),
        "outside_mask_pixels": outside_total,
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
        "machine": machine_info(),
        "wall_s": round(time.time() - t0, 1),
    }


def _select(inv: Any, idx: list[int]) -> Any:
    from inversion.inverter import Inversion

    return Inversion.cat([inv[i] for i in idx])


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
        "| edit | sensitive | strength | success | preservation | class kept |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, e in result["edits"].items():
        lines.append(
            f"| {name} | {'yes' if e['sensitive'] else 'no'} | {e['strength']:g} | "
            f"{e['success'] * 100:.1f}% | {e['preservation'] * 100:.1f}% | "
            f"{e['class_kept'] * 100:.1f}% |"
        )
    lines += [
        "",
        f"Domain gate (fitted on {g['fit']}, thresholds calibrated on "
        f"{g['calibration']} at the 99% quantile: OOD score <= "
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
                k: result[k]
                for k in (
                    "output_sizes",
                    "outside_mask_changed_fraction",
                    "edits",
                    "gate",
                    "wall_s",
                )
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
