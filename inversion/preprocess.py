"""Image input and output: untrusted bytes -> checked PIL image -> tensor, and back.

Uploads are untrusted. :func:`load_image_bytes` detects the format from the content
(never the file name), refuses formats outside an allow-list, refuses images whose
header declares more pixels than allowed *before* decoding them (decompression bombs),
decodes fully so truncated files fail here rather than in a GPU worker, and refuses
animations. :func:`to_rgb` then normalises whatever mode Pillow produced (EXIF
orientation, CMYK, palette, alpha composited on white, 16-bit greyscale) to 8-bit RGB.
The encoder sees a centre-cropped square resized to its input size, in [-1, 1], the
range the StyleGAN2 generator produces.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inversion.errors import ImageTooLarge, InvalidImage, UnsupportedImageFormat

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "DEFAULT_ALLOWED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "CheckedImage",
    "check_image_bytes",
    "load_image_bytes",
    "to_rgb",
    "center_crop_square",
    "prepare_image",
    "image_to_tensor",
    "tensor_to_images",
]

DEFAULT_ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
DEFAULT_MAX_PIXELS = 40_000_000  # about 7700 x 5200; phone cameras stay below
WHITE = (255, 255, 255)


def load_image_bytes(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Iterable[str] = DEFAULT_ALLOWED_FORMATS,
    *,
    max_bytes: int | None = None,
) -> Image.Image:
    """Open, check and fully decode an uploaded image.

    Raises:
        InvalidImage: empty, not an image, truncated or corrupt, animated.
        UnsupportedImageFormat: a real image in a format not in ``allowed_formats``.
        ImageTooLarge: more than ``max_pixels`` pixels (or ``max_bytes`` bytes).

    Pillow's own decompression-bomb guard (twice ``Image.MAX_IMAGE_PIXELS``, about
    179 megapixels) still applies above ``max_pixels``: it is process-global, so it is
    not raised here; its error is reported as :class:`ImageTooLarge` as well.
    """
    img = _open_checked(data, max_pixels, allowed_formats, max_bytes)
    _decode(img)
    return img


@dataclass(frozen=True)
class CheckedImage:
    """What :func:`check_image_bytes` learnt: format, size as stored, mode, EXIF orientation."""

    format: str
    width: int
    height: int
    mode: str
    orientation: int

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied (5-8 swap them)."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def check_image_bytes(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Iterable[str] = DEFAULT_ALLOWED_FORMATS,
    *,
    max_bytes: int | None = None,
) -> CheckedImage:
    """The checks of :func:`load_image_bytes` at a fraction of the cost; no pixels returned.

    Same refusals (same exceptions), but a JPEG is decoded at 1/8 scale in greyscale
    (``Image.draft``): libjpeg still reads and Huffman-decodes every scan, so a truncated
    or corrupt file fails as it does in a full decode, while the inverse DCT and colour
    conversion, most of the decode, run on 1/64 of the pixels. PNG and WebP are decoded
    fully (their decoders have no reduced mode). For callers that must refuse bad input
    now and leave the pixels to later (the submit path).
    """
    img = _open_checked(data, max_pixels, allowed_formats, max_bytes)
    width, height, mode = img.width, img.height, img.mode
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # malformed EXIF: the normaliser keeps the stored orientation too
        orientation = 1
    if img.format == "JPEG":
        img.draft("L", (1, 1))
    _decode(img)
    return CheckedImage(
        img.format or "", width, height, mode, orientation if 1 <= orientation <= 8 else 1
    )


def _open_checked(
    data: bytes, max_pixels: int, allowed_formats: Iterable[str], max_bytes: int | None
) -> Image.Image:
    """Open the header and apply every check that needs no decoding."""
    allowed = frozenset(f.upper() for f in allowed_formats)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImage(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise InvalidImage("the file is empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLarge(f"the file has {len(data)} bytes; the limit is {max_bytes}")

    try:
        # Pillow only reads the header here; its own bomb check may already fire.
        img = Image.open(io.BytesIO(data), formats=None)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image is too large: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidImage("the file is not a recognised image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image cannot be read: {exc}") from None

    fmt = (img.format or "").upper()
    if fmt not in allowed:
        raise UnsupportedImageFormat(
            f"image format {fmt or 'unknown'} is not accepted; allowed: "
            f"{', '.join(sorted(allowed))}"
        )
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    try:
        n_frames = int(getattr(img, "n_frames", 1))
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image cannot be read: {exc}") from None
    if n_frames > 1:
        raise InvalidImage(f"animated images are not accepted ({n_frames} frames)")
    return img


def _decode(img: Image.Image) -> None:
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image is too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image data is truncated or corrupt: {exc}") from None


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float greyscale -> 8-bit "L" (Pillow would clip)."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        arr = np.nan_to_num(arr * scale, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        arr = arr.astype(np.float64)
        if img.mode.startswith("I;16") or (arr.size and arr.max() > 255):
            arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB.

    Transparent images are composited on ``background`` (white): a transparent
    background is not black in anybody's intent.
    """
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # malformed EXIF: keep the stored orientation rather than fail
        oriented = None
    if oriented is not None:
        img = oriented

    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _to_8bit_gray(img).convert("RGB")
    has_alpha = (
        mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (mode == "P" and "transparency" in img.info)
        or (mode in ("L", "RGB") and "transparency" in img.info)
    )
    try:
        if has_alpha:
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (*background, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InvalidImage(f"cannot convert image mode {mode} to RGB: {exc}") from None


def center_crop_square(img: Image.Image) -> Image.Image:
    """The largest centred square."""
    w, h = img.size
    side = min(w, h)
    left = (w - side) // 2
    top = (h - side) // 2
    if (w, h) == (side, side):
        return img
    return img.crop((left, top, left + side, top + side))


def prepare_image(img: Image.Image, size: int) -> Image.Image:
    """RGB, centre crop, resize to ``size`` (Lanczos down, bicubic up)."""
    img = center_crop_square(to_rgb(img))
    if img.size != (size, size):
        resample = Image.Resampling.LANCZOS if img.size[0] > size else Image.Resampling.BICUBIC
        img = img.resize((size, size), resample=resample)
    return img


def image_to_tensor(images: Image.Image | Sequence[Image.Image], size: int) -> Tensor:
    """PIL image(s) -> float32 tensor (B, 3, size, size) in [-1, 1]."""
    import torch

    if isinstance(images, Image.Image):
        images = [images]
    if len(images) == 0:
        raise InvalidImage("no images given")
    arrays = [np.asarray(prepare_image(img, size), dtype=np.uint8) for img in images]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


def tensor_to_images(images: Tensor, size: int | None = None) -> list[Image.Image]:
    """Generator output (B, 3, H, W), about [-1, 1] -> 8-bit RGB PIL images.

    ``size`` resizes (Lanczos) to size x size; None keeps the generator's resolution.
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
    arr = (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5)
        .round()
        .to("cpu")
        .permute(0, 2, 3, 1)
        .numpy()
        .astype(np.uint8)
    )
    out = []
    for a in arr:
        img = Image.fromarray(a, mode="RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), resample=Image.Resampling.LANCZOS)
        out.append(img)
    return out
