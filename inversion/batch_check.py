"""``python -m inversion.batch_check``: is a sample's output independent of its batch,
and what does batching buy, on this machine's device?

For a batching worker (JOB_BATCH_SIZE > 1) the platform runs the Inverter in
``fixed_batch`` mode; this check inverts and edits the same photo alone and at every
position of a full batch and compares the tensors bit for bit (and the latent bytes),
with ``fixed_batch`` on and off, then times invert + edit per image at batch 1 and at
the batch size. Prints one JSON object (``--out`` also writes it). Runs on CPU or CUDA.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image

from inversion.inverter import Inverter


def _photos(n: int, size: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")
        for _ in range(n)
    ]


def _run(inv: Inverter, photos, edits):
    n = len(photos)
    out = inv.invert(photos, seed=[0] * n)
    return out, inv.edit(out, [edits] * n, seed=[0] * n)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def check(bundle: str, batch: int, device: str | None, repeats: int) -> dict:
    report: dict = {"bundle": bundle, "batch": batch, "torch": torch.__version__}
    for fixed in (True, False):
        inv = Inverter.from_path(bundle, device=device, batch_size=batch, fixed_batch=fixed)
        report["device"] = str(inv.device)
        if inv.device.type == "cuda":
            report["gpu"] = torch.cuda.get_device_name(inv.device)
        photos = _photos(batch, inv.input_size)
        spec = next(iter(inv.catalog))
        edits = {spec.name: spec.max_strength / 2}
        alone, alone_edit = _run(inv, photos[-1:], edits)
        full, full_edit = _run(inv, photos, edits)
        same = bool(
            torch.equal(alone.wplus[0], full.wplus[-1])
            and torch.equal(alone.reconstruction[0], full.reconstruction[-1])
            and torch.equal(alone_edit[0], full_edit[-1])
            and alone[0].to_bytes() == full[batch - 1].to_bytes()
        )
        worst = float((alone_edit[0] - full_edit[-1]).abs().max())
        timing = {}
        for b in (1, batch):
            _run(inv, photos[:b], edits)  # warm-up (cuDNN plans, allocator)
            _sync(inv.device)
            t = time.perf_counter()
            for _ in range(repeats):
                _run(inv, photos[:b], edits)
            _sync(inv.device)
            timing[f"ms_per_image_batch_{b}"] = round(
                (time.perf_counter() - t) / repeats / b * 1000, 3
            )
        timing["speedup"] = round(
            timing["ms_per_image_batch_1"] / timing[f"ms_per_image_batch_{batch}"], 2
        )
        report["fixed_batch" if fixed else "plain"] = {
            "alone_equals_last_position_bitwise": same,
            "edit_max_abs_diff": worst,
            **timing,
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="inversion/bundles/demo")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    report = check(args.bundle, args.batch, args.device, args.repeats)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
