"""Measure quality mode ``refine`` against ``fast`` and the optimisation ceiling.

``python -m inversion evaluate-refine --n 200 --steps 10,25,50 --ceiling-n 32`` inverts
``n`` held-out Fashion-MNIST test images (the official test split, never trained on)
with the encoder (``fast``), refines them at each step budget
(:func:`inversion.refine.refine`) and runs the ceiling
(:func:`inversion.evaluate.optimise_inversion`, 500 Adam steps on W+, the figure of the
main quality report) on a seeded subset of the same images. It reports PSNR/SSIM and
CPU/wall time per image, and for each budget the fraction of the fast -> ceiling PSNR
gap it closes on the ceiling's subset; ``--section`` appends the figures to
docs/quality.md as a self-contained block (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["evaluate_refine", "section_lines", "add_arguments", "run"]

SECTION = "## Quality mode: refine"


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float], n: int) -> dict[str, float]:
    wall, cpu = _clock()
    return {"ms_per_image": (wall - start[0]) / n * 1000,
            "cpu_ms_per_image": (cpu - start[1]) / n * 1000}


def evaluate_refine(bundle_path: str | Path, n: int = 200, steps: tuple[int, ...] = (10, 25, 50),
                    ceiling_n: int = 32, ceiling_steps: int = 500, seed: int = 0,
                    batch: int = 200, run_ceiling: bool = True, subset_only: bool = False,
                    log: Any = print) -> dict[str, Any]:
    from inversion.evaluate import machine_info, optimise_inversion, recon_metrics
    from inversion.inverter import Inverter
    from inversion.refine import RefineConfig, refine
    from inversion.training.data import load_fashion_mnist

    t0 = time.time()
    inverter = Inverter.from_path(bundle_path, device="cpu", batch_size=batch)
    test, _ = load_fashion_mnist("test", size=inverter.output_size)
    idx = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    images = test[idx]
    n = images.shape[0]
    ceiling_n = min(ceiling_n, n)
    sub = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:ceiling_n]
    sub = sub.sort().values

    def row(label: str, m: dict[str, torch.Tensor], timing: dict[str, float] | None,
            count: int) -> dict[str, Any]:
        out: dict[str, Any] = {"label": label, "n": count,
                               "psnr": float(m["psnr"].mean()), "ssim": float(m["ssim"].mean())}
        if timing:
            out.update(timing)
        return out

    rows: dict[str, Any] = {}
    on_sub: dict[str, float] = {}
    start = _clock()
    fast = inverter.invert(images)
    m = recon_metrics(fast.reconstruction, images)
    rows["fast"] = row("fast (encoder + Fuser)", m, _since(start, n), n)
    on_sub["fast"] = float(m["psnr"][sub].mean())
    log(f"fast: {rows['fast']}")
    for k in steps:
        start = _clock()
        # subset_only: refine just the ceiling's subset (the gap figure, at less CPU)
        which = sub if subset_only else torch.arange(n)
        refined = refine(inverter, fast[which.tolist()] if subset_only else fast,
                         images[which], k, seed=seed)
        m = recon_metrics(refined.reconstruction, images[which])
        rows[f"refine_{k}"] = row(f"refine, {k} steps", m, _since(start, len(which)),
                                  len(which))
        on_sub[f"refine_{k}"] = float((m["psnr"] if subset_only else m["psnr"][sub]).mean())
        log(f"refine {k}: {rows[f'refine_{k}']}")
    if run_ceiling and ceiling_n and ceiling_steps:
        start = _clock()
        rec = optimise_inversion(inverter.generator, inverter.latent_avg, images[sub],
                                 steps=ceiling_steps, batch=batch)
        m = recon_metrics(rec, images[sub])
        rows["ceiling"] = row(f"optimisation ceiling ({ceiling_steps} Adam steps on W+)", m,
                              _since(start, ceiling_n), ceiling_n)
        on_sub["ceiling"] = rows["ceiling"]["psnr"]
        log(f"ceiling: {rows['ceiling']}")
    return with_gap({
        "bundle": {"path": str(bundle_path), "version": inverter.version},
        "data": f"fashion-mnist:test ({n} of 10000, seed {seed})",
        "ceiling_subset": {"n": ceiling_n, "seed": seed + 1, "steps": ceiling_steps},
        "psnr_on_ceiling_subset": on_sub,
        "rows": rows,
        "config": RefineConfig().__dict__,
        "threads": torch.get_num_threads(),
        "machine": machine_info(),
        "wall_s": round(time.time() - t0, 1),
        "batch": batch,
    })


def with_gap(result: dict[str, Any]) -> dict[str, Any]:
    """Add the fraction of the fast -> ceiling gap each refine budget closes."""
    on_sub = result["psnr_on_ceiling_subset"]
    gap: dict[str, Any] = {}
    if "ceiling" in on_sub:
        total = on_sub["ceiling"] - on_sub["fast"]
        for key in sorted((k for k in on_sub if k.startswith("refine_")),
                          key=lambda k: int(k.split("_")[1])):
            gained = on_sub[key] - on_sub["fast"]
            gap[key.split("_")[1]] = {"gained_db": gained, "gap_db": total,
                                      "closed": gained / total if total > 0 else None}
    result["gap_closed"] = gap
    return result


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs of the same images and subset (e.g. refine and the ceiling run
    as two processes): rows and subset figures are united, wall times summed."""
    out = copy.deepcopy(parts[0])
    for p in parts[1:]:
        if p["data"] != out["data"] or p["ceiling_subset"] != out["ceiling_subset"]:
            raise ValueError("results measured on different images cannot be merged")
        out["rows"].update({k: v for k, v in p["rows"].items() if k != "fast"})
        out["psnr_on_ceiling_subset"].update(
            {k: v for k, v in p["psnr_on_ceiling_subset"].items() if k != "fast"})
        out["wall_s"] = max(out["wall_s"], p["wall_s"])
    rows = out["rows"]
    fast = rows.pop("fast")
    ordered = dict(sorted(rows.items(), key=lambda kv: (kv[0] == "ceiling", kv[0])))
    out["rows"] = {"fast": fast, **{k: ordered[k] for k in sorted(
        ordered, key=lambda k: (k == "ceiling", int(k.split("_")[1]) if "_" in k else 0))}}
    return with_gap(out)


def section_lines(result: dict[str, Any], command: str) -> list[str]:
    r, gap = result["rows"], result["gap_closed"]
    sub = result["ceiling_subset"]
    lines = [SECTION, "",
             "`refine` starts from the encoder's W+ codes and detail map and runs a bounded "
             "Adam optimisation of both against the aligned crop (`inversion/refine.py`: "
             "pixel MSE + multi-scale MSE + SSIM, a small anchor to the encoder's codes, "
             "the StyleGAN2 projector's step schedule). The detail map is the Fuser's input, "
             "so edits after `refine` still go through the Fuser with d = w_edit - w and the "
             "latent format is unchanged. The platform caps the steps (`max_steps`, setting "
             "`REFINE_MAX_STEPS`).", "",
             f"Measured on {result['data']}, held out of training; the optimisation ceiling "
             f"on a seeded subset of {sub['n']} of them (seed {sub['seed']}: 500-step "
             "optimisation costs seconds of CPU per image, so the subset keeps the "
             "measurement within its CPU budget). Produced by:", "",
             "```", command, "```", "",
             "| mode | images | PSNR (dB) | SSIM | wall / image | CPU / image |",
             "|---|---:|---:|---:|---:|---:|"]
    for v in r.values():
        wall = f"{v['ms_per_image']:.1f} ms" if "ms_per_image" in v else "-"
        cpu = f"{v['cpu_ms_per_image']:.1f} ms" if "cpu_ms_per_image" in v else "-"
        lines.append(f"| {v['label']} | {v['n']} | {v['psnr']:.2f} | {v['ssim']:.4f} | "
                     f"{wall} | {cpu} |")
    if gap:
        on = result["psnr_on_ceiling_subset"]
        lines += ["", f"Gap closed on the ceiling's {sub['n']} images (fast "
                  f"{on['fast']:.2f} dB, ceiling {on['ceiling']:.2f} dB; goal: at least half):",
                  ""]
        for k, g in gap.items():
            closed = g["closed"] if g["closed"] is not None else 0.0
            verdict = "met" if closed >= 0.5 else "missed"
            wall = r[f"refine_{k}"]["ms_per_image"] / max(r["fast"]["ms_per_image"], 1e-9)
            lines.append(f"- `refine`, {k} steps: +{g['gained_db']:.2f} dB of "
                         f"{g['gap_db']:.2f} dB = **{closed * 100:.0f}%** ({verdict}), at "
                         f"{r[f'refine_{k}']['ms_per_image']:.0f} ms wall per image "
                         f"({wall:.0f}x fast).")
    lines += ["", f"Machine: {result['machine']['processor']}, "
              f"{result['machine']['cpu_count']} CPU cores shared with other jobs (wall times "
              f"inflate with load; CPU time is the steadier figure), torch "
              f"{result['machine']['torch']}, {result['threads']} thread(s), batch of "
              f"{result.get('batch', 200)}; evaluation wall time {result['wall_s']:.0f} s.", ""]
    return lines


def append_section(path: Path, lines: list[str], heading: str = SECTION) -> None:
    """Replace the block that starts at ``heading`` (up to the next '## ') or append it."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines).rstrip() + "\n"
    if heading in text:
        before, rest = text.split(heading, 1)
        nxt = rest.find("\n## ")
        after = rest[nxt + 1:] if nxt >= 0 else ""
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", default="inversion/bundles/demo", type=Path)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--steps", default="10,25,50", help="comma-separated refine step budgets")
    p.add_argument("--ceiling-n", type=int, default=32)
    p.add_argument("--ceiling-steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="write the raw results")
    p.add_argument("--section", type=Path, default=None,
                   help="append/replace the section in this markdown file (docs/quality.md)")
    p.add_argument("--subset-only", action="store_true",
                   help="refine only the ceiling's subset (the gap figure)")
    p.add_argument("--skip-ceiling", action="store_true",
                   help="do not run the ceiling (run it as a separate process, then --merge)")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="no measuring: merge these --json results (same --n/--seed) and "
                        "write the section")
    p.add_argument("--command", default=None, help="with --merge: the command(s) to show")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.merge:
        result = merge([json.loads(Path(p).read_text()) for p in args.merge])
        command = args.command or "\n".join(
            json.loads(Path(p).read_text()).get("command", "") for p in args.merge)
    else:
        steps = tuple(int(s) for s in str(args.steps).split(",") if s.strip())
        result = evaluate_refine(args.bundle, n=args.n, steps=steps, ceiling_n=args.ceiling_n,
                                 ceiling_steps=args.ceiling_steps, seed=args.seed,
                                 batch=args.batch, run_ceiling=not args.skip_ceiling,
                                 subset_only=args.subset_only)
        command = "python -m inversion " + shlex.join(
            getattr(args, "_argv", ["evaluate-refine"]))
    result["command"] = command
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.section:
        append_section(args.section, section_lines(result, command))
    print(json.dumps({k: result[k] for k in ("rows", "gap_closed", "wall_s")}, indent=2))
    return 0
