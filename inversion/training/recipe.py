"""The demo recipe, end to end: ``python -m inversion train recipe --run runs/demo``.

Stages (each one a project command, recorded verbatim in the bundle's manifest):

1. ``generator``  -- StyleGAN2, 32 px demo config, on Fashion-MNIST ``train`` (55k)
2. ``classifier`` -- attribute classifier on the real labels (``train``; ``val`` held out)
3. ``directions`` -- InterFaceGAN boundaries (+ GANSpace) and the edit catalog
4. ``encoder``    -- MambaStyle encoder + Fuser, jointly
5. ``psp``        -- the pSp baseline, same loop, data, batch and steps
6. ``package``    -- the bundle (``inversion/bundles/demo``) and the evaluation extras
                     (``inversion/bundles/demo_eval``: classifier, pSp weights)
7. ``evaluate``   -- ``python -m inversion evaluate`` -> docs/quality.md + grid
8. ``finalize``   -- rebuild the bundle with the measured metrics in its manifest

Improving the encoder of a shipped bundle (generator untouched; ``docs/quality.md``,
"Fidelity recipe"): ``train perceptual``, then ``train encoder --stage recon`` and
``--stage joint`` (resumable, warm-started from the bundle), then ``--only swap-encoder
--encoder EXPORT``: the export replaces the bundle's encoder and Fuser only if it
reconstructs held-out ``val`` images better than the shipped one (else it refuses), and
the edits are re-fitted for it with ``train directions --bundle`` as below.

Every stage is resumable (the training stages resume from their checkpoints); ``--only``
runs a subset. Wall times per stage go to ``<run>/recipe.json``.

Re-fitting only the edits of a shipped bundle (generator, encoder and Fuser untouched):
``train directions --bundle`` chooses disentangled edits on held-out val inversions, then
``--only rebundle --edits DIR`` swaps the bundle's directions and catalog (weights copied
unchanged), ``evaluate`` measures it and ``--only finalize --edits DIR`` writes the
measured metrics into the manifest and re-renders the report with the shipped version.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "STAGES",
    "stage_commands",
    "package_bundle",
    "ci_reconstruction_psnr",
    "add_arguments",
    "run",
]

STAGES = (
    "generator",
    "classifier",
    "directions",
    "encoder",
    "psp",
    "package",
    "evaluate",
    "finalize",
)
CALIB_IMAGES = 256  # val images used to calibrate the catalog's default strengths (default)
CI_SUBSET = 64  # first N official test images: the bundle's reproducible PSNR check
DATA_SOURCE = (
    "Debian package dataset-fashion-mnist (Zalando Fashion-MNIST, MIT licence): "
    "train = first 55,000 of the official training split, val = last 5,000, "
    "evaluation = official 10,000-image test split (never trained on); 28x28 "
    "grey zero-padded to 32x32, replicated to RGB"
)


def stage_commands(a: argparse.Namespace) -> dict[str, list[str]]:
    r = Path(a.run)
    py = ["python", "-m", "inversion"]
    enc_common = [
        "--generator",
        str(r / "generator/generator.pt"),
        "--directions",
        str(r / "directions/directions.safetensors"),
        "--steps",
        str(a.encoder_steps),
        "--batch",
        "16",
        "--gen-batch",
        "8",
        "--seed",
        str(a.seed),
    ]
    if a.encoder_budget:
        enc_common += ["--time-budget", str(a.encoder_budget)]
    gen = [
        *py,
        "train",
        "generator",
        "--out",
        str(r / "generator"),
        "--steps",
        str(a.generator_steps),
        "--seed",
        str(a.seed),
    ]
    if a.generator_budget:
        gen += ["--time-budget", str(a.generator_budget)]
    return {
        "generator": gen,
        "classifier": [
            *py,
            "train",
            "classifier",
            "--out",
            str(r / "classifier"),
            "--steps",
            "800",
            "--width",
            "16",
            "--seed",
            str(a.seed),
        ],
        "directions": [
            *py,
            "train",
            "directions",
            "--generator",
            str(r / "generator/generator.pt"),
            "--classifier",
            str(r / "classifier/classifier.pt"),
            "--out",
            str(r / "directions"),
            "--samples",
            str(a.direction_samples),
            "--seed",
            str(a.seed),
        ],
        "encoder": [
            *py,
            "train",
            "encoder",
            "--arch",
            "mambastyle",
            "--out",
            str(r / "encoder"),
            *enc_common,
        ],
        "psp": [*py, "train", "encoder", "--arch", "psp", "--out", str(r / "psp"), *enc_common],
        "package": [
            *py,
            "train",
            "recipe",
            "--run",
            str(r),
            "--bundle",
            str(a.bundle),
            "--eval-dir",
            str(a.eval_dir),
            "--calib-images",
            str(a.calib_images),
            "--only",
            "package",
        ],
        "evaluate": [
            *py,
            "evaluate",
            "--bundle",
            str(a.bundle),
            "--classifier",
            str(Path(a.eval_dir) / "classifier.pt"),
            "--psp",
            str(Path(a.eval_dir) / "psp_encoder.pt"),
            "--out",
            str(a.report),
            "--grid",
            str(a.grid),
            "--json",
            str(r / "evaluation.json"),
            "--n",
            str(a.eval_n),
            "--opt-n",
            str(a.opt_n),
            "--opt-steps",
            str(a.opt_steps),
            "--extra",
            str(r / "report_extra.json"),
        ],
        "finalize": [
            *py,
            "train",
            "recipe",
            "--run",
            str(r),
            "--bundle",
            str(a.bundle),
            "--eval-dir",
            str(a.eval_dir),
            "--calib-images",
            str(a.calib_images),
            "--only",
            "finalize",
        ],
    }


@torch.no_grad()
def ci_reconstruction_psnr(bundle_path: str | Path, n: int = CI_SUBSET) -> float:
    """Mean PSNR (dB, [0, 1] scale) of the bundle's Inverter on the first ``n`` test
    images -- the figure the shipped-bundle test reproduces."""
    from inversion.evaluate import recon_metrics
    from inversion.inverter import Inverter
    from inversion.training.data import load_fashion_mnist

    inv = Inverter.from_path(bundle_path, device="cpu", batch_size=n)
    x, _ = load_fashion_mnist("test", size=inv.output_size, limit=n)
    rec = inv.invert(x).reconstruction
    return float(recon_metrics(rec, x)["psnr"].mean())


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def package_bundle(
    run_dir: str | Path,
    bundle: str | Path,
    eval_dir: str | Path,
    metrics: dict[str, Any] | None = None,
    commands: list[str] | None = None,
    calibrate: bool = False,
    calib_images: int = CALIB_IMAGES,
) -> Any:
    """Build the bundle from a recipe run's outputs; copy evaluation extras."""
    from inversion.bundle import build_bundle
    from inversion.training.directions import load_generator
    from inversion.training.train_encoder import load_encoder_export

    r = Path(run_dir)
    g, avg = load_generator(r / "generator/generator.pt")
    gck = torch.load(r / "generator/generator.pt", map_location="cpu", weights_only=False)
    arch, enc, fus, ecfg, fcfg = load_encoder_export(r / "encoder/encoder.pt")
    if arch != "mambastyle" or fus is None:
        raise ValueError("the bundle needs a MambaStyle encoder + Fuser export")
    recipe = _read_json(r / "recipe.json")
    provenance = {
        "training": "trained by the project's demo recipe (inversion/training/recipe.py)",
        "data": DATA_SOURCE,
        "commands": commands or recipe.get("commands", []),
        "seeds": recipe.get("seed", 0),
        "stages": recipe.get("stages", {}),
        "generator": {**gck.get("train", {}), "config": gck.get("config")},
        "encoder": _read_json(r / "encoder/summary.json"),
        "psp_baseline": _read_json(r / "psp/summary.json"),
        "classifier": _read_json(r / "classifier/summary.json"),
        "directions": _read_json(r / "directions/report.json"),
        "machine": {
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "device": "cpu (shared with other jobs)"
            if not torch.cuda.is_available()
            else torch.cuda.get_device_name(0),
        },
        "wall_time_s": recipe.get("total_wall_s"),
        "budget": recipe.get("budget"),
        "notes": (
            "Demo model: 32 px product photos, not faces. Use it to exercise the "
            "platform; real deployments bring an FFHQ generator and train the "
            "encoder with the same commands on GPUs."
        ),
    }
    b = build_bundle(
        bundle,
        {"g_ema": g.state_dict(), "latent_avg": avg},
        enc.state_dict(),
        fus.state_dict(),
        ecfg,
        fcfg,
        r / "directions/directions.safetensors",
        r / "directions/catalog.json",
        provenance,
        metrics=metrics or {},
        overwrite=True,
    )
    if calibrate:
        from inversion.inverter import Inverter
        from inversion.training.classifier import load_classifier
        from inversion.training.data import load_fashion_mnist
        from inversion.training.directions import calibrate_on_real, with_fine_layer_edits

        x, _ = load_fashion_mnist("val", size=g.size, limit=calib_images)
        inverter = Inverter(b, device="cpu", batch_size=256)
        inverter.catalog = with_fine_layer_edits(inverter.catalog, g.n_latent)
        catalog, calib = calibrate_on_real(
            inverter, x, load_classifier(r / "classifier/classifier.pt")
        )
        catalog.save(r / "directions/catalog_calibrated.json")
        (r / "directions/calibration.json").write_text(json.dumps(calib, indent=2))
    calib_path = r / "directions/catalog_calibrated.json"
    final_path = r / "directions/catalog_final.json"
    if final_path.exists():
        provenance["catalog_sensitivity"] = _read_json(r / "directions/sensitivity.json")
    if calib_path.exists():
        provenance["catalog_calibration"] = {
            "data": f"fashion-mnist:val[0:{calib_images}] (held out of training and of evaluation)",
            "rule": "smallest strength (0.5 steps) flipping the classifier label of >= 85% "
            "of inversions moved towards the other side",
            "result": _read_json(r / "directions/calibration.json"),
        }
        b = build_bundle(
            bundle,
            {"g_ema": g.state_dict(), "latent_avg": avg},
            enc.state_dict(),
            fus.state_dict(),
            ecfg,
            fcfg,
            r / "directions/directions.safetensors",
            final_path if final_path.exists() else calib_path,
            provenance,
            metrics=metrics or {},
            overwrite=True,
        )
    ev = Path(eval_dir)
    ev.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(r / "classifier/classifier.pt", ev / "classifier.pt")
    psp_export = r / "psp/encoder.pt"
    if psp_export.exists():
        ck = torch.load(psp_export, map_location="cpu", weights_only=False)
        torch.save(ck, ev / "psp_encoder.pt")
    return b


VAL_GATE_N = 1000  # val images on which a new encoder must beat the shipped one


def compare_encoders_on_val(
    bundle: str | Path, export: str | Path, n: int = VAL_GATE_N, batch: int = 250
) -> dict[str, Any]:
    """PSNR / SSIM of the bundle's encoder + Fuser and of ``export``'s on ``val[-n:]``.

    ``val`` is held out of training and of the test evaluation, so choosing on it keeps
    the test figures clean. Same generator, same Inverter path for both.
    """
    import dataclasses

    from inversion.bundle import load_bundle
    from inversion.evaluate import recon_metrics
    from inversion.inverter import Inverter
    from inversion.training.data import load_fashion_mnist
    from inversion.training.train_encoder import load_encoder_export

    b = load_bundle(bundle)
    x, _ = load_fashion_mnist("val", size=b.generator_config.size)
    x = x[-n:]
    _, enc, fus, _, _ = load_encoder_export(export)
    swapped = dataclasses.replace(
        b,
        state_dicts={
            **b.state_dicts,
            "encoder": {k: v.detach().clone() for k, v in enc.state_dict().items()},
            "fuser": {k: v.detach().clone() for k, v in fus.state_dict().items()},
        },
    )
    out: dict[str, Any] = {"data": f"fashion-mnist:val[-{n}:]", "n": n}
    for key, bun in (("shipped", b), ("candidate", swapped)):
        rec = Inverter(bun, device="cpu", batch_size=batch).invert(x).reconstruction
        m = recon_metrics(rec, x)
        out[key] = {
            "psnr": round(float(m["psnr"].mean()), 4),
            "ssim": round(float(m["ssim"].mean()), 4),
        }
    out["shipped_version"] = b.version
    out["candidate"]["export"] = str(export)
    return out


def swap_encoder(
    bundle: str | Path,
    export: str | Path,
    commands: list[str],
    force: bool = False,
    n: int = VAL_GATE_N,
) -> tuple[Any, dict[str, Any]]:
    """Replace the bundle's encoder + Fuser with ``export`` if it is better on ``val``.

    Directions and catalog are kept as they are (re-fit them next: their measured
    figures describe the old encoder); provenance records the comparison and the
    training stages of the export.
    """
    from inversion.bundle import build_bundle, load_bundle

    cmp = compare_encoders_on_val(bundle, export, n=n)
    better = cmp["candidate"]["psnr"] > cmp["shipped"]["psnr"]
    if not better and not force:
        raise SystemExit(
            f"the candidate encoder is not better on {cmp['data']}: PSNR "
            f"{cmp['candidate']['psnr']} vs shipped {cmp['shipped']['psnr']} dB; bundle unchanged"
        )
    from inversion.training.train_encoder import load_encoder_export

    old = load_bundle(bundle)
    _, enc, fus, ecfg, fcfg = load_encoder_export(export)
    ck = torch.load(export, map_location="cpu", weights_only=False)
    provenance = json.loads(json.dumps(old.provenance))
    history = provenance.setdefault("commands", [])
    history.extend(c for c in commands if c not in history)
    provenance.setdefault("encoder_retraining", []).append(
        {"train": ck.get("train", {}), "val_comparison": cmp, "forced": bool(force and not better)}
    )
    with tempfile.TemporaryDirectory() as tmp:
        dirs = Path(tmp) / "directions.safetensors"
        cat = Path(tmp) / "catalog.json"
        shutil.copyfile(Path(bundle) / "directions.safetensors", dirs)
        shutil.copyfile(Path(bundle) / "catalog.json", cat)
        b = build_bundle(
            bundle,
            {"g_ema": old.state_dicts["generator"], "latent_avg": old.latent_avg},
            enc.state_dict(),
            fus.state_dict(),
            ecfg,
            fcfg,
            dirs,
            cat,
            provenance,
            metrics={},  # the old figures describe the old encoder; finalize measures anew
            overwrite=True,
        )
    return b, cmp


def rebundle_with_edits(
    bundle: str | Path,
    edits_dir: str | Path,
    catalog_path: str | Path | None = None,
    metrics: dict[str, Any] | None = None,
    commands: list[str] | None = None,
) -> Any:
    """Rebuild a trained bundle with the directions and catalog of ``edits_dir``.

    Generator, encoder, Fuser and latent_avg come from the bundle itself, so their files
    (and hashes) stay the same; provenance keeps its training record and gains an
    ``edits`` section (the directions command and its val measurements) and the new
    commands. ``metrics`` replaces the manifest's metrics when given (the old edit
    figures describe edits that no longer exist, so they are dropped otherwise).
    """
    from inversion.bundle import build_bundle, load_bundle

    old = load_bundle(bundle)
    e = Path(edits_dir)
    report = _read_json(e / "report.json")
    provenance = json.loads(json.dumps(old.provenance))
    history = provenance.setdefault("commands", [])
    for cmd in [report.get("command"), *(commands or [])]:
        if cmd and cmd not in history:
            history.append(cmd)
    provenance["edits"] = {
        "how": "directions and catalog re-fitted for the trained generator/encoder/Fuser "
        "(weights unchanged): conditional InterFaceGAN boundaries restricted to "
        "W+ layers, chosen on held-out val inversions with the Fuser",
        "command": report.get("command"),
        "report": report,
    }
    provenance.pop("catalog_calibration", None)  # described the replaced catalog
    provenance.pop("catalog_sensitivity", None)
    sens = _read_json(e / "sensitivity.json")
    if sens:
        provenance["catalog_sensitivity"] = sens
    kept_metrics = {k: v for k, v in old.metrics.items() if k != "edits"}
    return build_bundle(
        bundle,
        {"g_ema": old.state_dicts["generator"], "latent_avg": old.latent_avg},
        old.state_dicts["encoder"],
        old.state_dicts["fuser"],
        old.encoder_config,
        old.fuser_config,
        e / "directions.safetensors",
        Path(catalog_path) if catalog_path else e / "catalog.json",
        provenance,
        metrics=metrics if metrics is not None else kept_metrics,
        overwrite=True,
    )


CLASS_KEPT_MIN = 0.9  # an edit keeping the item's class less often than this is sensitive


def mark_sensitive_by_measurement(
    run_dir: Path, src: Path | None = None, out_dir: Path | None = None
) -> dict[str, Any]:
    """Mark edits sensitive when the evaluation measured that they change the item's class.

    The approval policy reads ``sensitive``; an edit described as shape- or tone-only
    that, at its default strength, changes the 10-way class of more than
    1 - CLASS_KEPT_MIN of the test images changes what the product is, whatever its
    name says. Writes ``directions/catalog_final.json`` and ``sensitivity.json`` and
    updates the flags in ``evaluation.json`` (so the report shows the shipped flags).
    """
    import dataclasses

    from inversion.editing.catalog import EditCatalog

    r = Path(run_dir)
    ev_path = r / "evaluation.json"
    ev = _read_json(ev_path)
    src = src or r / "directions/catalog_calibrated.json"
    out_dir = out_dir or r / "directions"
    if not ev or not src.exists():
        return {}
    catalog = EditCatalog.load(src)
    changed: dict[str, Any] = {}
    specs = []
    for spec in catalog:
        row = ev["edits"].get(spec.name)
        if row is not None and not spec.sensitive:
            kept = row["fuser"]["class_kept"]
            if kept < CLASS_KEPT_MIN:
                note = (
                    f" Measured on {ev['n_images']} held-out test images at the default "
                    f"strength ({spec.default_strength:g}): the item's class changed for "
                    f"{(1 - kept) * 100:.0f}% of them, so it is marked sensitive."
                )
                spec = dataclasses.replace(
                    spec, sensitive=True, description=spec.description + note
                )
                row["sensitive"] = True
                changed[spec.name] = {"class_kept": kept, "threshold": CLASS_KEPT_MIN}
        specs.append(spec)
    EditCatalog(specs).save(out_dir / "catalog_final.json")
    (out_dir / "sensitivity.json").write_text(
        json.dumps(
            {
                "rule": f"sensitive if the class is kept for < {CLASS_KEPT_MIN:.0%} of test images "
                "at the default strength (with the Fuser)",
                "marked": changed,
            },
            indent=2,
        )
    )
    ev_path.write_text(json.dumps(ev, indent=2))
    return changed


def _rerender_report(
    run_dir: Path, args: argparse.Namespace, state: dict[str, Any], shipped: Any = None
) -> None:
    from inversion.evaluate import write_report

    ev = _read_json(run_dir / "evaluation.json")
    if not ev:
        return
    if shipped is not None:
        _name_shipped_version(ev, shipped)
        (run_dir / "evaluation.json").write_text(json.dumps(ev, indent=2))
    extra = _read_json(run_dir / "report_extra.json")
    extra["recipe stages (wall s)"] = {k: v.get("wall_s") for k, v in state["stages"].items()}
    extra["recipe total wall time (s)"] = _total(state)
    sens = _read_json(run_dir / "directions/sensitivity.json")
    if sens.get("marked"):
        extra["sensitivity set by measurement"] = sens
    extra.update(_read_json(run_dir / "analysis.json"))
    cmd = ev.get("command") or shlex.join(stage_commands(args)["evaluate"])
    write_report(ev, args.report, extra=extra, command=cmd)


def _name_shipped_version(ev: dict[str, Any], shipped: Any) -> None:
    """Point the report at the bundle as shipped (finalize rewrites its manifest).

    Finalize writes the measured metrics (and possibly sensitivity flags) into the
    bundle after the evaluation, which changes the manifest and so the version; the
    report names the shipped version and lists which files differ from the evaluated
    ones (weights must not).
    """
    evaluated = ev["bundle"].get("files") or {}
    now = shipped.manifest["files"]
    differ = sorted(k for k in now if k in evaluated and evaluated[k]["sha256"] != now[k]["sha256"])
    ev["bundle"]["evaluated_version"] = ev["bundle"].get(
        "evaluated_version", ev["bundle"]["version"]
    )
    ev["bundle"]["version"] = shipped.version
    ev["bundle"]["files"] = now
    ev["bundle"]["files_changed_after_evaluation"] = differ


def _final_metrics(run_dir: Path, bundle: Path) -> dict[str, Any]:
    ev = _read_json(run_dir / "evaluation.json")
    metrics: dict[str, Any] = {}
    if ev:
        m = ev["methods"]
        metrics["reconstruction"] = {
            k: {kk: round(v, 5) if isinstance(v, float) else v for kk, v in m[k].items()} for k in m
        }
        metrics["edits"] = ev["edits"]
        metrics["evaluation_data"] = ev["data"]
    metrics["ci_reconstruction"] = {
        "subset": f"fashion-mnist:test[0:{CI_SUBSET}]",
        "psnr_db": round(ci_reconstruction_psnr(bundle), 4),
        "how": "Inverter(bundle, cpu).invert(images).reconstruction; mean per-image PSNR "
        "on [0, 1]; const noise",
    }
    return metrics


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", default=Path("runs/demo"), type=Path)
    p.add_argument("--bundle", default=Path("inversion/bundles/demo"), type=Path)
    p.add_argument("--eval-dir", default=Path("inversion/bundles/demo_eval"), type=Path)
    p.add_argument("--report", default=Path("docs/quality.md"), type=Path)
    p.add_argument("--grid", default=Path("docs/images/quality_grid.png"), type=Path)
    p.add_argument("--only", default=None, help="comma-separated stages to run")
    p.add_argument(
        "--edits",
        default=None,
        type=Path,
        help="output of `train directions --bundle`: with --only rebundle, swap "
        "the bundle's directions and catalog; with --only finalize, finalize "
        "that bundle (no run folder needed)",
    )
    p.add_argument(
        "--encoder",
        default=None,
        type=Path,
        help="with --only swap-encoder: the encoder.pt export to put into the bundle "
        "(only if it beats the shipped encoder on held-out val images)",
    )
    p.add_argument("--force", action="store_true", help="swap-encoder even if not better")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generator-steps", type=int, default=100_000)
    p.add_argument("--generator-budget", type=float, default=4200)
    p.add_argument("--direction-samples", type=int, default=5000)
    p.add_argument("--encoder-steps", type=int, default=1000)
    p.add_argument(
        "--sequential",
        action="store_true",
        help="train the encoder and the pSp baseline one after the other "
        "(default: at the same time, one thread each)",
    )
    p.add_argument("--encoder-budget", type=float, default=None)
    p.add_argument(
        "--calib-images",
        type=int,
        default=CALIB_IMAGES,
        help="held-out val images that calibrate the edits' default strengths",
    )
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--opt-n", type=int, default=200)
    p.add_argument("--opt-steps", type=int, default=500)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmds = stage_commands(args)
    stages = args.only.split(",") if args.only else list(STAGES)
    state_path = run_dir / "recipe.json"
    state = _read_json(state_path)
    state.setdefault("stages", {})
    state["seed"] = args.seed
    state["commands"] = [shlex.join(cmds[s]) for s in STAGES]
    state["budget"] = {
        "generator_s": args.generator_budget,
        "encoder_steps": args.encoder_steps,
        "encoder_s": args.encoder_budget,
        "target_total_s": 7200,
    }
    _adopt_existing(state, run_dir)
    if stages == ["swap-encoder"]:
        if args.encoder is None:
            raise SystemExit("--only swap-encoder needs --encoder EXPORT")
        me = shlex.join(["python", "-m", "inversion", "train", "recipe", *sys.argv[3:]])
        b, cmp = swap_encoder(args.bundle, args.encoder, [me], force=args.force)
        (run_dir / "swap_encoder.json").write_text(json.dumps(cmp, indent=2))
        print(json.dumps(cmp, indent=2))
        print(f"swap-encoder: {args.bundle} version {b.version}", flush=True)
        return 0
    if args.edits is not None:
        return _run_edits_stages(args, stages)
    for stage in stages:
        if stage not in cmds:
            raise SystemExit(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        if stage == "psp" and not args.sequential and "encoder" in stages:
            continue  # ran together with `encoder`
        t0 = time.time()
        if stage == "encoder" and not args.sequential and "psp" in stages:
            _run_parallel({k: cmds[k] for k in ("encoder", "psp")})
            wall = round(time.time() - t0, 1)
            for k in ("encoder", "psp"):
                state["stages"][k] = {
                    "wall_s": wall,
                    "parallel": True,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            state["total_wall_s"] = _total(state)
            state_path.write_text(json.dumps(state, indent=2))
            continue
        if stage == "package" and args.only:
            package_bundle(
                run_dir, args.bundle, args.eval_dir, calibrate=True, calib_images=args.calib_images
            )
        elif stage == "finalize" and args.only:
            mark_sensitive_by_measurement(run_dir)
            metrics = _final_metrics(run_dir, Path(args.bundle))
            package_bundle(
                run_dir, args.bundle, args.eval_dir, metrics=metrics, calib_images=args.calib_images
            )
            _rerender_report(run_dir, args, state)
        else:
            if stage == "evaluate":
                extra = {
                    "recipe stages (wall s)": {
                        k: v.get("wall_s") for k, v in state["stages"].items()
                    },
                    "commands": state["commands"],
                    "data": DATA_SOURCE,
                    **_read_json(run_dir / "notes.json"),
                }
                (run_dir / "report_extra.json").write_text(json.dumps(extra, indent=2))
            cmd = [sys.executable, *cmds[stage][1:]]
            print(f"== {stage}: {shlex.join(cmds[stage])}", flush=True)
            proc = subprocess.run(cmd)
            if proc.returncode != 0:
                raise SystemExit(f"stage {stage} failed ({proc.returncode})")
        state["stages"][stage] = {
            "wall_s": round(time.time() - t0, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        state["total_wall_s"] = _total(state)
        state_path.write_text(json.dumps(state, indent=2))
    return 0


def _run_edits_stages(args: argparse.Namespace, stages: list[str]) -> int:
    """``--edits``: rebundle / finalize a shipped bundle whose weights stay as they are."""
    edits, run_dir = Path(args.edits), Path(args.run)
    me = shlex.join(["python", "-m", "inversion", "train", "recipe", *sys.argv[3:]])
    for stage in stages:
        if stage == "rebundle":
            b = rebundle_with_edits(args.bundle, edits, commands=[me])
        elif stage == "finalize":
            mark_sensitive_by_measurement(run_dir, src=edits / "catalog.json", out_dir=edits)
            ev = _read_json(run_dir / "evaluation.json")
            cmds = [c for c in (ev.get("command"), me) if c]
            b = rebundle_with_edits(
                args.bundle,
                edits,
                catalog_path=edits / "catalog_final.json",
                metrics=_final_metrics(run_dir, Path(args.bundle)),
                commands=cmds,
            )
            _name_shipped_version(ev, b)
            (run_dir / "evaluation.json").write_text(json.dumps(ev, indent=2))
            extra = _read_json(run_dir / "report_extra.json")
            sens = _read_json(edits / "sensitivity.json")
            if sens.get("marked"):
                extra["sensitivity set by measurement"] = sens
            from inversion.evaluate import write_report

            write_report(ev, args.report, extra=extra, command=ev.get("command"))
        else:
            raise SystemExit(f"--edits supports the stages rebundle and finalize, not {stage!r}")
        print(f"{stage}: {args.bundle} version {b.version}", flush=True)
    return 0


def _total(state: dict[str, Any]) -> float:
    """Recipe wall time: parallel stages count once."""
    total, seen_parallel = 0.0, False
    for v in state["stages"].values():
        if v.get("parallel"):
            if seen_parallel:
                continue
            seen_parallel = True
        total += float(v.get("wall_s") or 0)
    return round(total, 1)


def _run_parallel(cmds: dict[str, list[str]]) -> None:
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = {}
    for name, cmd in cmds.items():
        print(f"== {name} (parallel): {shlex.join(cmd)}", flush=True)
        procs[name] = subprocess.Popen([sys.executable, *cmd[1:]], env=env)
    failed = [n for n, p in procs.items() if p.wait() != 0]
    if failed:
        raise SystemExit(f"stages failed: {failed}")


def _adopt_existing(state: dict[str, Any], run_dir: Path) -> None:
    """Record stages finished by earlier invocations (e.g. a resumed generator run)."""
    gen = run_dir / "generator" / "generator.pt"
    if "generator" not in state["stages"] and gen.exists():
        train = torch.load(gen, map_location="cpu", weights_only=False).get("train", {})
        state["stages"]["generator"] = {
            "wall_s": train.get("wall_s"),
            "adopted": True,
            "step": train.get("step"),
            "kimg": train.get("kimg"),
        }
    clf = run_dir / "classifier" / "summary.json"
    if "classifier" not in state["stages"] and clf.exists():
        state["stages"]["classifier"] = {"wall_s": _read_json(clf).get("wall_s"), "adopted": True}
