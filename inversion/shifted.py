"""A shifted product-photo domain for the domain-adaptation demonstration (issue 16).

Why: the demo bundle draws grey Fashion-MNIST items on black. A company's own product
photos differ from that in predictable ways; this module makes such a folder from
Fashion-MNIST *training-file* images the demo never trained on (the ``val`` split, the
last 5,000 of the official training file), so the gap and its closing can be measured
without any download.

The shift ("studio" style), per image, seeded:

* the item is tinted with one of a small palette of product colours (the grey value
  is multiplied by the colour, so the item's shading is kept);
* the background is a dim coloured backdrop (a random colour of intensity 0.10-0.25)
  instead of black.

Images are written as 32x32 RGB PNGs (the demo model's own size, the item padded as
:func:`inversion.training.data.fashion_to_tensor` pads it), so centre alignment is the
identity and the reconstruction is compared with exactly the pixels on disk.

``python -m inversion shifted-photos --out DIR --start 0 --n 2000`` writes
``DIR/val_<index>.png``; disjoint ``--start`` ranges give disjoint training and
held-out folders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from inversion.errors import InversionError

__all__ = ["PALETTE", "ShiftedPhotosError", "shift_images", "write_shifted", "add_arguments", "run"]


class ShiftedPhotosError(InversionError, ValueError):
    """The requested photos are outside the held-out split (or the input is not grey)."""


# product colours (RGB in [0, 1]) the items are tinted with
PALETTE = (
    (0.95, 0.35, 0.30),  # red
    (0.30, 0.55, 0.95),  # blue
    (0.35, 0.80, 0.40),  # green
    (0.95, 0.80, 0.30),  # mustard
    (0.70, 0.40, 0.85),  # purple
    (0.95, 0.60, 0.45),  # salmon
)


def shift_images(items: np.ndarray, seed: int = 0, size: int = 32) -> np.ndarray:
    """uint8 (N, 28, 28) grey items -> uint8 (N, size, size, 3) shifted product photos."""
    if items.ndim != 3:
        raise ShiftedPhotosError(f"expected (N, H, W) grey images, got shape {items.shape}")
    rng = np.random.default_rng(seed)
    n, h, w = items.shape
    lo_y, lo_x = (size - h) // 2, (size - w) // 2
    grey = np.zeros((n, size, size), np.float64)
    grey[:, lo_y : lo_y + h, lo_x : lo_x + w] = items / 255.0
    tint = np.asarray(PALETTE)[rng.integers(0, len(PALETTE), n)]  # (N, 3)
    hue = rng.uniform(0.2, 1.0, (n, 3))
    backdrop = hue / hue.max(1, keepdims=True) * rng.uniform(0.10, 0.25, (n, 1))
    g = grey[..., None]
    out = g * tint[:, None, None, :] + (1 - g) * backdrop[:, None, None, :]
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def write_shifted(out: str | Path, start: int, n: int, seed: int = 0) -> list[Path]:
    """Write ``val[start:start+n]`` as shifted PNGs into ``out``; returns the paths."""
    from PIL import Image

    from inversion.training.data import (
        FASHION_FILES,
        TRAIN_SPLIT,
        ensure_fashion_mnist,
        read_idx,
    )

    raw = read_idx(ensure_fashion_mnist() / FASHION_FILES["train"][0])[TRAIN_SPLIT:]
    if start < 0 or n < 1 or start + n > raw.shape[0]:
        raise ShiftedPhotosError(
            f"val[{start}:{start + n}] is outside the {raw.shape[0]} val images"
        )
    photos = shift_images(raw[start : start + n], seed=seed + start)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arr in enumerate(photos):
        p = out / f"val_{start + i:05d}.png"
        Image.fromarray(arr, mode="RGB").save(p)
        paths.append(p)
    (out / "SOURCE.json").write_text(
        json.dumps(
            {
                "source": f"fashion-mnist train file, val split [{start}:{start + n}]",
                "shift": "tinted items on a dim coloured backdrop (inversion.shifted)",
                "seed": seed + start,
            },
            indent=2,
        )
    )
    return paths


def write_evaluate_subset(out: str | Path, n: int, seed: int = 0) -> list[Path]:
    """The *unshifted* held-out images ``python -m inversion evaluate --n N --seed S``
    measures (Fashion-MNIST test, ``randperm(seed)[:n]``) as 32 px PNGs, in its order
    (``test_<rank>_<index>.png``): so ``poc`` can be checked against ``evaluate`` on
    exactly the same pixels."""
    import torch
    from PIL import Image

    from inversion.training.data import load_fashion_mnist

    test, _ = load_fashion_mnist("test", size=32)
    idx = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    arr = test[idx].add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, (i, a) in enumerate(zip(idx.tolist(), arr.numpy(), strict=True)):
        p = out / f"test_{rank:05d}_{i:05d}.png"
        Image.fromarray(a, mode="RGB").save(p)
        paths.append(p)
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--evaluate-subset",
        action="store_true",
        help="instead: write evaluate's unshifted test subset (--n images, --seed)",
    )
    p.add_argument("--start", type=int, default=0, help="first index in the val split")
    p.add_argument("--n", type=int, default=200, help="number of photos")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if args.evaluate_subset:
        paths = write_evaluate_subset(args.out, args.n, args.seed)
        print(f"{len(paths)} unshifted test images (evaluate's subset) -> {args.out}")
        return 0
    paths = write_shifted(args.out, args.start, args.n, args.seed)
    print(f"{len(paths)} shifted product photos -> {args.out}")
    return 0
