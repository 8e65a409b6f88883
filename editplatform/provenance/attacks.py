"""The transformations an output meets outside: recompression, resizing, crops, light, turns.

Each takes and returns a PIL RGB image; `strip` re-encodes pixels only (no metadata),
which is what any re-save does to a C2PA manifest.
"""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def strip(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    Image.frombytes("RGB", image.size, image.convert("RGB").tobytes()).save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def resize_half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


def crop10(image: Image.Image) -> Image.Image:
    """Keep the central 90 % of each side (10 % of the width and height cut away)."""
    dx, dy = round(image.width * 0.05), round(image.height * 0.05)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def crop10_corner(image: Image.Image) -> Image.Image:
    """Keep the top-left 90 % of each side (the 10 % cut from the right and the bottom)."""
    w, h = image.size
    return image.crop((0, 0, w - round(w * 0.1), h - round(h * 0.1)))


def crop10_uneven(image: Image.Image) -> Image.Image:
    """Cut 3 % left, 7 % right, 8 % top, 2 % bottom: 10 % of each side, off centre."""
    w, h = image.size
    return image.crop((round(w * 0.03), round(h * 0.08), w - round(w * 0.07), h - round(h * 0.02)))


def brighten10(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1.10)


def rotate2(image: Image.Image) -> Image.Image:
    return image.rotate(2, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


ATTACKS = {
    "none": lambda im: im,
    "jpeg50": lambda im: jpeg(im, 50),
    "jpeg75": lambda im: jpeg(im, 75),
    "jpeg90": lambda im: jpeg(im, 90),
    "resize0.5": resize_half,
    "crop10": crop10,
    "crop10corner": crop10_corner,
    "crop10uneven": crop10_uneven,
    "brightness+10": brighten10,
    "rotate2": rotate2,
    "strip": strip,
}
CROPS = ("crop10", "crop10corner", "crop10uneven")
NON_CROP = tuple(name for name in ATTACKS if name not in CROPS)
