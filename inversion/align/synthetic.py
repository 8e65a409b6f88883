"""Generated catalogue-style photos: a Fashion-MNIST item on a large plain canvas.

Why: ``object`` alignment and the whole photo -> crop -> edit -> paste-back pipeline are
measured on photos whose ground truth is known (where the item is, what it is). A
catalogue shot is an item on a near-uniform background, off-centre, with margins; this
composites a held-out 28x28 item (its intensity used as opacity) in a tint onto a plain
(optionally graded) background, adds sensor noise and JPEG compression, and returns the
photo with the item's true box. Used by tests/inversion/test_align_object.py and
:mod:`inversion.pipeline_eval`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["CANVAS_TONES", "catalogue_canvas", "catalogue_photo", "random_canvas"]

# (background RGB, item tint RGB): white, light grey, mid grey, black, beige, navy
CANVAS_TONES: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = [
    ((250, 250, 250), (40, 40, 40)),
    ((215, 215, 212), (120, 30, 30)),
    ((128, 128, 128), (250, 250, 250)),
    ((8, 8, 8), (255, 255, 255)),
    ((236, 222, 196), (30, 60, 140)),
    ((20, 30, 70), (240, 200, 60)),
]


def catalogue_canvas(
    item: np.ndarray,
    bg: Sequence[float],
    tint: Sequence[float],
    size: tuple[int, int] = (512, 512),
    scale: int = 8,
    pos: tuple[float, float] = (0.3, 0.6),
    noise: float = 3.0,
    seed: int = 0,
    gradient: float = 0.0,
    quality: int = 90,
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """(photo, true box (x0, y0, x1, y1)) of ``item`` (28x28 uint8) on a plain canvas.

    The item is resized ``scale`` times and placed at ``pos`` (fractions of the free room
    along x and y); ``gradient`` adds a vertical background ramp of +-gradient levels.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    side = item.shape[0] * scale
    big = (
        np.asarray(
            Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64
        )
        / 255
    )
    alpha = np.zeros((h, w))
    x0 = int(pos[0] * (w - side))
    y0 = int(pos[1] * (h - side))
    alpha[y0 : y0 + side, x0 : x0 + side] = big.clip(0, 1)
    base = np.broadcast_to(np.asarray(bg, dtype=np.float64), (h, w, 3)).copy()
    base += gradient * np.linspace(-1, 1, h)[:, None, None]
    img = base * (1 - alpha[..., None]) + np.asarray(tint, dtype=np.float64) * alpha[..., None]
    img += rng.normal(0, noise, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=quality
    )
    ys, xs = np.nonzero(alpha > 0.25)
    truth = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), truth


def random_canvas(
    item: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] = (512, 512),
    scales: tuple[int, int] = (4, 11),
    dark: bool = True,
) -> tuple[Image.Image, tuple[int, int, int, int], dict[str, object]]:
    """A canvas at a random position, scale and background tone; also its parameters.

    ``dark=True`` keeps the demo model's colour domain (a light item on a dark
    background, as Fashion-MNIST): background tone 0-60, item 190-255, grey. Otherwise
    the tone pair is drawn from :data:`CANVAS_TONES`.
    """
    scale = int(rng.integers(scales[0], scales[1]))
    pos = (float(rng.uniform(0.02, 0.98)), float(rng.uniform(0.02, 0.98)))
    if dark:
        b, t = int(rng.integers(0, 61)), int(rng.integers(190, 256))
        bg, tint = (b, b, b), (t, t, t)
    else:
        bg, tint = CANVAS_TONES[int(rng.integers(len(CANVAS_TONES)))]
    seed = int(rng.integers(2**31))
    photo, truth = catalogue_canvas(item, bg, tint, size=size, scale=scale, pos=pos, seed=seed)
    return photo, truth, {"scale": scale, "pos": pos, "background": bg, "tint": tint}


def catalogue_photo(
    item: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] | None = None,
    jpeg: bool | None = None,
) -> Image.Image:
    """A catalogue photo in the demo model's domain at any size: a light grey ``item``
    (28x28 uint8) off-centre on a dark, slightly noisy canvas, with margins.

    ``size`` (w, h) defaults to a random one (long side 48-640 px, aspect 3:4 to 4:3):
    photos arrive at every size, and the aligned crop of a small photo (the item
    upsampled, its noise kept) differs from that of a large one (downsampled, noise
    averaged out), so the domain gate is calibrated on both. The item fills 30-80 % of
    the short side; background tone 0-40, item 190-255, noise sigma 1-4; JPEG (quality
    80-95) half of the time unless ``jpeg`` says.
    """
    if size is None:
        long_side = int(round(float(np.exp(rng.uniform(np.log(48), np.log(640))))))
        aspect = float(rng.uniform(0.75, 1.33))
        short = max(32, int(round(long_side * min(aspect, 1 / aspect))))
        size = (long_side, short) if aspect >= 1 else (short, long_side)
    w, h = size
    side = max(12, int(round(float(rng.uniform(0.3, 0.8)) * min(w, h))))
    big = (
        np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC), np.float64)
        / 255
    ).clip(0, 1)
    bg, tint = float(rng.integers(0, 41)), float(rng.integers(190, 256))
    x0 = int(rng.uniform(0.05, 0.95) * (w - side))
    y0 = int(rng.uniform(0.05, 0.95) * (h - side))
    alpha = np.zeros((h, w))
    alpha[y0 : y0 + side, x0 : x0 + side] = big
    grey = bg * (1 - alpha) + tint * alpha + rng.normal(0, float(rng.uniform(1, 4)), (h, w))
    arr = np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None], 3, 2)
    photo = Image.fromarray(arr, "RGB")
    if jpeg if jpeg is not None else bool(rng.integers(2)):
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=int(rng.integers(80, 96)))
        photo = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return photo
