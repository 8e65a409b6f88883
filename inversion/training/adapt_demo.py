"""The domain-adaptation demonstration of issue 16, as one bounded command.

``python -m inversion.training.adapt_demo --work runs/adapt-demo [--steps N --time-budget S]``

1. **Parent**: a copy of the demo bundle that declares its domain (``product``,
   ``center`` alignment) with a domain gate calibrated on the original domain
   (Fashion-MNIST ``val[4000:4500]`` fit, ``val[4500:4750]`` thresholds; the demo never
   trained on the val split) -- the demo bundle as shipped declares none, and a gate is
   what the pass rate is measured with.
2. **Photos** (:mod:`inversion.shifted`): the shifted product-photo domain (tinted items
   on a dim coloured backdrop) from held-out training-file images: ``val[0:N]`` for
   adaptation, ``val[3000:3200]`` held out for the reports.
3. **Before**: ``python -m inversion poc`` of the parent on the held-out photos.
4. **Adapt**: ``python -m inversion train adapt`` (encoder + Fuser).
5. **After**: ``python -m inversion poc`` of the adapted bundle on the same photos.

Each step is the public command (run in-process through :func:`inversion.cli.main`),
so every report records the command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["declare_reference_gate", "main"]

HELD_OUT = (3000, 200)


def declare_reference_gate(
    bundle: str | Path, out: str | Path, fit_n: int = 500, calib_n: int = 250
) -> Any:
    """Copy ``bundle`` to ``out`` and declare its domain with a reference-calibrated gate
    (``fit_n`` / ``calib_n``: how many of the reference slices to use)."""
    from inversion.bundle import load_bundle
    from inversion.bundle_domain import BundleDomain, apply_domain
    from inversion.domain import DomainGate
    from inversion.inverter import Inverter
    from inversion.training.adapt import (
        REFERENCE_GATE_CALIB,
        REFERENCE_GATE_FIT,
        reference_images,
    )

    out = Path(out)
    shutil.copytree(bundle, out)
    b = load_bundle(out)
    size = b.generator_config.size
    inv = Inverter(b, "cpu", batch_size=256)
    a, b = REFERENCE_GATE_FIT
    fit = inv.invert(reference_images((a, min(b, a + fit_n)), size))
    a, b = REFERENCE_GATE_CALIB
    cal_x = reference_images((a, min(b, a + calib_n)), size)
    cal = inv.invert(cal_x)
    domain = BundleDomain(
        subject="product",
        align="center",
        resolution=size,
        colour="rgb",
        description="catalogue items, grey on black, 32 px (Fashion-MNIST style)",
    )
    gate = DomainGate.calibrate(
        fit.wplus,
        cal.wplus,
        calib_reconstruction=cal.reconstruction,
        calib_target=cal_x,
        domain=domain.description,
        calibration=f"fashion-mnist:val[{a}:{a + cal_x.shape[0]}]",
    )
    return apply_domain(
        out,
        domain,
        gate,
        command=f"inversion.training.adapt_demo.declare_reference_gate({str(bundle)!r}, "
        f"{str(out)!r}, {fit_n}, {calib_n})",
    )


def main(argv: list[str] | None = None) -> int:
    from inversion.cli import main as cli

    p = argparse.ArgumentParser(
        prog="python -m inversion.training.adapt_demo", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--bundle", default="inversion/bundles/demo")
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--n", type=int, default=3000, help="adaptation photos (val[0:n])")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--time-budget", type=float, default=None)
    p.add_argument("--classifier", default="inversion/bundles/demo_eval/classifier.pt")
    p.add_argument("--gpu-hour-price", default="2.50")
    p.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="further `train adapt` options"
    )
    a = p.parse_args(argv)
    if a.n > HELD_OUT[0]:
        p.error(f"--n must be <= {HELD_OUT[0]} (the held-out photos start there)")
    w = a.work
    w.mkdir(parents=True, exist_ok=True)
    parent = w / "parent"
    if not parent.exists():
        declare_reference_gate(a.bundle, parent)
    for name, (start, n) in (("photos", (0, a.n)), ("heldout", HELD_OUT)):
        if not (w / name).exists():
            cli(["shifted-photos", "--out", str(w / name), "--start", str(start), "--n", str(n)])
    common = [
        "--photos",
        str(w / "heldout"),
        "--gpu-hour-price",
        a.gpu_hour_price,
        "--classifier",
        a.classifier,
    ]
    rc = cli(["poc", "--bundle", str(parent), "--out", str(w / "report-before"), *common])
    train = [
        "train",
        "adapt",
        "--bundle",
        str(parent),
        "--photos",
        str(w / "photos"),
        "--out",
        str(w / "adapted"),
        "--steps",
        str(a.steps),
        *a.extra,
    ]
    if a.time_budget:
        train += ["--time-budget", str(a.time_budget)]
    if (w / "adapted.run" / "checkpoint.pt").exists():
        train.append("--resume")
    rc = rc or cli(train)
    rc = rc or cli(
        ["poc", "--bundle", str(w / "adapted"), "--out", str(w / "report-after"), *common]
    )
    if rc == 0:
        out = {}
        for k in ("before", "after"):
            r = json.loads((w / f"report-{k}" / "report.json").read_text())
            out[k] = {
                "version": r["bundle"]["version"],
                "psnr": r["reconstruction"]["psnr"],
                "ssim": r["reconstruction"]["ssim"],
                "gate_pass_rate": r["domain_gate"]["pass_rate"],
            }
        print(json.dumps(out, indent=2))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
