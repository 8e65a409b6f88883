"""Upload validation: untrusted bytes -> a normalised, hashed RGB PNG, or a rejection.

Nothing is stored here; the caller stores only what this module accepted. Order of the
checks, cheapest first, so a hostile upload costs as little as possible:

1. byte count (413) — before the bytes are read;
2. the type from the content's magic number, never the name or the Content-Type
   header: JPEG, PNG and WebP only (415 naming what it looks like: GIF, SVG, HTML...);
3. :func:`inversion.preprocess.load_image_bytes`: the pixel count from the header
   before decoding (decompression bombs, 413), a full decode (truncated or corrupt:
   400), no animations (400);
4. normalisation: EXIF orientation applied, embedded colour profile converted to sRGB,
   any mode (CMYK, palette, alpha, 16-bit, greyscale) to 8-bit RGB;
5. re-encoding as PNG without any metadata (EXIF, GPS, XMP, ICC), then SHA-256.

All five stay on the request path: a bad upload must be refused with a 4xx naming the
problem, which takes the full decode (3), and the job's `job.submitted` event and its
approval binding (`params_sha256`) commit to the normalised original's hash, which
takes (4) and (5). What was made cheaper instead is the re-encoding, which was about 90 %
of a submit's CPU: see :func:`encode_png`.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageCms, ImageOps

from editplatform.core.errors import DomainError
from inversion.errors import ImageTooLarge, InvalidImage, UnsupportedImageFormat
from inversion.preprocess import load_image_bytes, to_rgb

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
ALLOWED_LABEL = "JPEG, PNG or WebP"
FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other fields of a multipart request


def rejected(status: int, code: str, message: str) -> DomainError:
    """The domain error of an unusable upload (the `image` field is to blame)."""
    return DomainError(message, code, status=status, field="image")


@dataclass(frozen=True)
class ValidatedImage:
    png: bytes
    sha256: str
    width: int
    height: int
    source_format: str
    upload_sha256: str
    upload_size: int


def sniff(data: bytes) -> str | None:
    """The accepted format the content's magic number announces, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def describe(data: bytes) -> str:
    """A human name for content that is not an accepted image (for the error message)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    if data[:2] == b"BM":
        return "a BMP image"
    if data[:4] == b"%PDF":
        return "a PDF document"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image"
    if head.startswith(b"<"):
        if b"<svg" in head:
            return "an SVG image"
        if b"<html" in head or b"<!doctype html" in head:
            return "an HTML document"
        return "an XML/markup document"
    if data[:4] == b"PK\x03\x04":
        return "a ZIP archive"
    return "not an image format we recognise"


def check_declared_size(size: int | None) -> None:
    """Refuse a body or file larger than UPLOAD_MAX_BYTES before reading it."""
    limit = settings.UPLOAD_MAX_BYTES
    if size is not None and size > limit:
        raise rejected(
            413, "file_too_large", f"the image has {size} bytes; the limit is {limit} bytes"
        )


def check_request_size(content_length) -> None:
    """Refuse a request whose declared body cannot hold an image within the limit.

    Called before the multipart body is parsed, so an oversized upload costs nothing.
    """
    try:
        declared = int(content_length or 0)
    except (TypeError, ValueError):
        return  # no usable declaration: the file's own size is checked when read
    check_declared_size(declared - FORM_OVERHEAD_BYTES if declared > FORM_OVERHEAD_BYTES else None)


def read_upload(uploaded) -> bytes:
    """Read a Django UploadedFile, refusing it on size before reading."""
    if uploaded is None:
        raise rejected(400, "missing", "no image was uploaded (multipart field 'image')")
    check_declared_size(getattr(uploaded, "size", None))
    uploaded.seek(0)
    data = uploaded.read(settings.UPLOAD_MAX_BYTES + 1)
    check_declared_size(len(data))
    return data


def _to_srgb(img: Image.Image) -> Image.Image:
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


def encode_png(img: Image.Image) -> bytes:
    """8-bit RGB PNG of `img`'s pixels alone: Pillow at zlib level 1 with the RLE strategy.

    The re-encoding was about 90 % of a submit's CPU at Pillow's compress_level=3; level 1
    with ``Z_RLE`` takes about 0.57x the CPU for files about 1 % larger (1.2-MP photo:
    54 ms against 94 ms; see docs/benchmarks.md). A hand-written encoder with one row
    filter was ~20 ms faster still; it was not kept, Pillow's encoder being the
    maintained one. The image is rebuilt from its pixels first, so it carries no info
    dict: only IHDR, IDAT and IEND are written and no metadata can reach storage. The
    bytes are a function of the pixels (same Pillow and zlib, same bytes), which the
    content address relies on.
    """
    clean = Image.frombytes(
        "RGB", img.size, (img if img.mode == "RGB" else img.convert("RGB")).tobytes()
    )
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()


def validate_image(data: bytes, *, upload_sha256: str | None = None) -> ValidatedImage:
    """Validate and normalise uploaded bytes; raise a :class:`DomainError` naming the problem.

    ``upload_sha256``: the caller's hash of ``data`` when it has one already.
    """
    check_declared_size(len(data))
    if not data:
        raise rejected(400, "empty", "the uploaded file is empty")
    announced = sniff(data)
    if announced is None:
        raise rejected(
            415,
            "unsupported_type",
            f"the file is {describe(data)}; only {ALLOWED_LABEL} images are accepted",
        )
    try:
        img = load_image_bytes(data, settings.UPLOAD_MAX_PIXELS, ALLOWED_FORMATS)
    except ImageTooLarge as exc:
        raise rejected(413, "too_many_pixels", str(exc)) from None
    except UnsupportedImageFormat as exc:
        raise rejected(415, "unsupported_type", str(exc)) from None
    except InvalidImage as exc:
        raise rejected(
            400, "invalid_image", f"the {announced} image cannot be used: {exc}"
        ) from None
    try:
        # Orientation first (to_rgb applies it too, but the profile step drops EXIF).
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # malformed EXIF: keep the stored orientation
        pass
    try:
        rgb = to_rgb(_to_srgb(img))
    except InvalidImage as exc:
        raise rejected(
            400, "invalid_image", f"the {announced} image cannot be used: {exc}"
        ) from None
    png = encode_png(rgb)  # pixels only: no EXIF, XMP, ICC or text chunks reach storage
    return ValidatedImage(
        png=png,
        sha256=hashlib.sha256(png).hexdigest(),
        width=rgb.width,
        height=rgb.height,
        source_format=announced,
        upload_sha256=upload_sha256 or hashlib.sha256(data).hexdigest(),
        upload_size=len(data),
    )
