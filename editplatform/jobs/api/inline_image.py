"""The image of a JSON job request: base64 text, refused on size before it is decoded.

A JSON body carries the image as base64 (4 characters per 3 bytes), so the limits are
those of an upload scaled by 4/3: the declared body length is checked before the body
is parsed, the text's length before it is decoded, and the decoded bytes once more.
The bytes then go to :func:`editplatform.jobs.services.submit` like an uploaded file's.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from django.conf import settings

from editplatform.core.errors import DomainError
from editplatform.jobs import uploads

FIELD = "image_base64"
JSON_OVERHEAD_BYTES = 64 * 1024  # edits, purpose, consent and the JSON punctuation
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.ASCII)


def encoded_limit() -> int:
    """The longest base64 text of an image within UPLOAD_MAX_BYTES."""
    return 4 * math.ceil(settings.UPLOAD_MAX_BYTES / 3)


def check_body_size(content_length) -> None:
    """Refuse a JSON body too long to hold an image within the limit, before parsing it."""
    try:
        declared = int(content_length or 0)
    except (TypeError, ValueError):
        return  # no usable declaration: the text's length is checked before decoding
    if declared > encoded_limit() + JSON_OVERHEAD_BYTES:
        raise _refused(
            413,
            "file_too_large",
            f"the request has {declared} bytes; a base64 image of at most "
            f"{settings.UPLOAD_MAX_BYTES} bytes needs at most "
            f"{encoded_limit() + JSON_OVERHEAD_BYTES}",
        )


def decode(text) -> bytes:
    """The image bytes of ``image_base64`` (plain base64 or a ``data:`` URL)."""
    if text is None or text == "":
        raise _refused(
            400, "missing", f"no image was sent (JSON field '{FIELD}': the file's bytes in base64)"
        )
    if not isinstance(text, str):
        raise _refused(
            400, "invalid", f"{FIELD} must be a string of base64, got {type(text).__name__}"
        )
    text = _DATA_URL.sub("", text, count=1)
    if len(text) > encoded_limit():
        _check_size(len(text) // 4 * 3)  # the size it would decode to: 413 before decoding
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refused(400, "invalid_base64", f"{FIELD} is not valid base64: {exc}") from None
    _check_size(len(data))
    return data


def _check_size(size: int) -> None:
    try:
        uploads.check_declared_size(size)
    except DomainError as error:
        error.field = FIELD
        raise


def _refused(status: int, code: str, message: str):
    error = uploads.rejected(status, code, message)
    error.field = FIELD
    return error
