"""The stored original (the exact uploaded bytes) -> the pixels the pipeline works on.

Normalising used to happen on the request path and its PNG re-encoding was most of a
submit's CPU. The stored original is now the upload itself (content-addressed by the
SHA-256 of its bytes, see docs/submit-path.md), and every reader that needs pixels
calls :func:`decode_original`, which is a pure function of those bytes: the same
upload always gives the same pixels, on the web side (provenance checks) and in the
worker. No database, no settings: the worker's pipeline imports it.

Steps: a full decode (:func:`inversion.preprocess.load_image_bytes`, which refuses
what the request path's cheaper check could not see), EXIF orientation applied, an
embedded ICC profile converted to sRGB, any mode to 8-bit RGB. Metadata never leaves
this function: the result is pixels only.
"""

from __future__ import annotations

import io
import zlib

from PIL import Image, ImageCms, ImageOps

from inversion.errors import InvalidImage
from inversion.preprocess import load_image_bytes, to_rgb

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# The request path enforced the operator's pixel limit already; this only bounds what a
# stored artifact from an older or foreign writer may cost to decode.
DECODE_MAX_PIXELS = 10**9


def to_srgb(img: Image.Image) -> Image.Image:
    """Convert pixels from an embedded ICC profile to sRGB (keeps colours right)."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(img, source, target, outputMode=out_mode) or img
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: keep the pixels as they are


def normalise(img: Image.Image) -> Image.Image:
    """A decoded image -> 8-bit RGB, upright, in sRGB. Raises InvalidImage."""
    try:
        # Orientation first (to_rgb applies it too, but the profile step drops EXIF).
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # malformed EXIF: keep the stored orientation
        pass
    return to_rgb(to_srgb(img))


def decode_original(data: bytes) -> Image.Image:
    """The normalised RGB pixels of a stored original (JPEG, PNG or WebP bytes).

    Raises :class:`inversion.errors.InvalidImage` (or one of its siblings) for bytes
    that do not decode: the worker fails such a job with the reason.
    """
    img = load_image_bytes(data, max_pixels=DECODE_MAX_PIXELS, allowed_formats=ACCEPTED_FORMATS)
    rgb = normalise(img)
    if rgb.mode != "RGB":  # to_rgb's contract; checked because the pipeline relies on it
        raise InvalidImage(f"normalisation gave mode {rgb.mode}, not RGB")
    return rgb


def encode_png(img: Image.Image) -> bytes:
    """8-bit RGB PNG of `img`'s pixels alone: Pillow at zlib level 1 with the RLE strategy.

    For callers that need the normalised pixels as a file (provenance checks); the
    original is no longer re-encoded on submit. The image is rebuilt from its pixels
    first, so it carries no info dict: only IHDR, IDAT and IEND are written and no
    metadata can leave. Level 1 with ``Z_RLE`` takes about 0.57x the CPU of Pillow's
    default for files about 1 % larger (docs/benchmarks.md).
    """
    clean = Image.frombytes(
        "RGB", img.size, (img if img.mode == "RGB" else img.convert("RGB")).tobytes()
    )
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()
