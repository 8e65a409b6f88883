"""Upload validation on the request path: untrusted bytes -> an accepted upload, or a
rejection naming the problem.

Nothing is stored here; the caller stores only what this module accepted. What is
accepted is stored *without re-encoding*: the original artifact is the uploaded file
with its metadata segments removed (:mod:`editplatform.jobs.scrub`), its compressed
pixels byte for byte, identified by its SHA-256 (docs/submit-path.md says why and what
that means for the log, approvals and provenance). Normalising the pixels (EXIF
orientation, sRGB, 8-bit RGB) is :mod:`editplatform.jobs.normalise`'s job, done where
pixels are needed (the worker), no longer on the request path, where re-encoding them
as PNG was most of a submit's CPU.

Checks, cheapest first, so a hostile upload costs as little as possible:

1. byte count (413) — before the bytes are read;
2. the type from the content's magic number, never the name or the Content-Type
   header: JPEG, PNG and WebP only (415 naming what it looks like: GIF, SVG, HTML...);
3. :func:`inversion.preprocess.check_image_bytes`: the pixel count from the header
   before decoding (decompression bombs, 413), no animations (400), and a decode of
   the whole stream (truncated or corrupt: 400) — for JPEG at 1/8 scale, which reads
   every byte of the entropy-coded data at a fraction of a full decode's cost;
4. the metadata walk (:func:`editplatform.jobs.scrub.scrub`; a structure it cannot
   follow: 400).

(1)-(3) stay on the request path because a bad upload must be refused synchronously
with a 4xx naming the problem, and only (3) can tell a truncated file from a good one;
(4) because metadata (GPS positions, names, serial numbers) must never reach storage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings

from editplatform.core.errors import DomainError
from editplatform.jobs import normalise
from editplatform.jobs.scrub import ScrubError, scrub
from inversion.errors import ImageTooLarge, InvalidImage, UnsupportedImageFormat
from inversion.preprocess import check_image_bytes

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
ALLOWED_LABEL = "JPEG, PNG or WebP"
FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other fields of a multipart request


def rejected(status: int, code: str, message: str) -> DomainError:
    """The domain error of an unusable upload (the `image` field is to blame)."""
    return DomainError(message, code, status=status, field="image")


MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class ValidatedImage:
    """An upload the request path accepted: the bytes to store and what the check learnt.

    ``data`` is the upload with its metadata removed (:mod:`editplatform.jobs.scrub`),
    its compressed pixels untouched; ``sha256`` its hash, the stored original's content
    address. ``upload_sha256`` / ``upload_size`` describe the bytes as uploaded (what an
    Idempotency-Key replay must match). ``width`` and ``height`` are upright (EXIF
    orientation applied), as the normalised pixels will be. ``pixels`` / ``png`` (the
    normalised image) are computed on first use, for callers that need pixels now
    (provenance checks); submit never touches them.
    """

    data: bytes
    sha256: str
    upload_sha256: str
    upload_size: int
    width: int
    height: int
    source_format: str

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.source_format]

    @cached_property
    def pixels(self):
        """The normalised 8-bit RGB image (a full decode: not for the request path)."""
        return normalise.decode_original(self.data)

    @cached_property
    def png(self) -> bytes:
        """The normalised pixels as a metadata-free PNG (not for the request path)."""
        return normalise.encode_png(self.pixels)


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


def validate_image(data: bytes, *, upload_sha256: str | None = None) -> ValidatedImage:
    """Check uploaded bytes; raise a :class:`DomainError` naming the problem.

    Does not decode in full, normalise or re-encode: the accepted upload keeps its
    compressed pixels byte for byte; only its metadata is removed.

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
        checked = check_image_bytes(data, settings.UPLOAD_MAX_PIXELS, ALLOWED_FORMATS)
    except ImageTooLarge as exc:
        raise rejected(413, "too_many_pixels", str(exc)) from None
    except UnsupportedImageFormat as exc:
        raise rejected(415, "unsupported_type", str(exc)) from None
    except InvalidImage as exc:
        raise rejected(
            400, "invalid_image", f"the {announced} image cannot be used: {exc}"
        ) from None
    if checked.format != announced:  # the magic number and Pillow disagree: not ours
        raise rejected(
            400, "invalid_image", f"the file starts like {announced} but is {checked.format}"
        )
    try:
        stored = scrub(data, announced, checked.orientation)
    except ScrubError as exc:
        raise rejected(
            400, "invalid_image", f"the {announced} image cannot be used: {exc}"
        ) from None
    upload_sha256 = upload_sha256 or hashlib.sha256(data).hexdigest()
    width, height = checked.upright_size
    return ValidatedImage(
        data=stored,
        sha256=upload_sha256 if stored == data else hashlib.sha256(stored).hexdigest(),
        upload_sha256=upload_sha256,
        upload_size=len(data),
        width=width,
        height=height,
        source_format=announced,
    )
