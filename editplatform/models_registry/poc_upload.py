"""The proof-of-concept upload: an untrusted zip of photos -> validated PNGs, or a 400.

Why a module of its own: a zip is a small file system written by someone else. Before
anything is stored, every check runs in memory, cheapest first:

1. the zip's own size (``POC_UPLOAD_MAX_BYTES``) and that it *is* a zip;
2. the central directory only: member count (``POC_MAX_IMAGES`` photos), names (no
   absolute paths, ``..``, backslashes, drive letters or control characters), no
   symbolic links or other special files, no encrypted members, declared sizes (each
   photo at most ``UPLOAD_MAX_BYTES``, all together at most ``POC_MAX_UNCOMPRESSED_BYTES``)
   and compression ratios (a zip bomb declares a small size or compresses absurdly well);
3. each member read with a hard cap (the header's size is not trusted), then validated
   and normalised exactly like a job's upload (:func:`editplatform.jobs.uploads.validate_image`:
   magic number, pixel count before decoding, full decode, EXIF orientation, sRGB, PNG
   without metadata).

Only images are accepted: anything else is refused by name. macOS's ``__MACOSX/``
resource forks and ``.DS_Store`` files, which Finder adds to every zip it makes, are
the one exception (ignored, never read). Nothing is ever extracted to disk under a
name from the archive: the result is a list of (safe name, PNG bytes) and a fresh zip
of them (:func:`pack`), which is what gets stored.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass

from django.conf import settings

from editplatform.core.errors import DomainError
from editplatform.jobs.uploads import validate_image

MAX_RATIO = 200  # uncompressed / compressed: photos barely compress; bombs compress ~1000:1
RATIO_FLOOR_BYTES = 64 * 1024  # tiny members may compress well (flat test images)
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidPhotoZip(DomainError):
    """The uploaded zip cannot be used; the message names the problem (and the member)."""

    def __init__(self, message: str):
        super().__init__(message, "invalid_photo_zip", status=400, field="photos")


@dataclass(frozen=True)
class Photo:
    name: str  # safe, flat, unique: NNNN-<sanitised original base name>.png
    original_name: str
    png: bytes


def _ignored(name: str) -> bool:
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] == ".DS_Store"


def _check_name(name: str) -> None:
    if not name or _UNSAFE_CHARS.search(name):
        raise InvalidPhotoZip(f"member {name!r}: the name holds a backslash or control character")
    parts = name.split("/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise InvalidPhotoZip(f"member {name!r}: the path leaves the archive (absolute or '..')")


def _is_special(info: zipfile.ZipInfo) -> bool:
    """A symbolic link, device, FIFO ... (Unix mode in the high bits of external_attr)."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type recorded (Windows tools)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    per_file = settings.UPLOAD_MAX_BYTES
    members, total = [], 0
    for info in archive.infolist():
        _check_name(info.filename)
        if _ignored(info.filename) or info.is_dir():
            continue
        if _is_special(info):
            raise InvalidPhotoZip(
                f"member {info.filename!r} is a link or special file, not a photo"
            )
        if info.flag_bits & 0x1:
            raise InvalidPhotoZip(f"member {info.filename!r} is encrypted")
        if info.file_size > per_file:
            raise InvalidPhotoZip(
                f"member {info.filename!r} is {info.file_size} bytes uncompressed; a photo may "
                f"have at most {per_file}"
            )
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            ratio = info.file_size // max(info.compress_size, 1)
            raise InvalidPhotoZip(
                f"member {info.filename!r} compresses {ratio}:1, more than {MAX_RATIO}:1: "
                "refused as a zip bomb"
            )
        total += info.file_size
        members.append(info)
        if len(members) > settings.POC_MAX_IMAGES:
            raise InvalidPhotoZip(
                f"the zip holds more than {settings.POC_MAX_IMAGES} files; a proof of concept "
                f"takes at most {settings.POC_MAX_IMAGES} photos"
            )
    if total > settings.POC_MAX_UNCOMPRESSED_BYTES:
        raise InvalidPhotoZip(
            f"the zip unpacks to {total} bytes, more than {settings.POC_MAX_UNCOMPRESSED_BYTES}"
        )
    if not members:
        raise InvalidPhotoZip("the zip holds no photos")
    return members


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, never more than its declared size (a lying header is refused)."""
    limit = info.file_size
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        raise InvalidPhotoZip(f"member {info.filename!r} cannot be read: {exc}") from None
    if len(data) > limit:
        raise InvalidPhotoZip(f"member {info.filename!r} is larger than its header says")
    return data


def _safe_name(index: int, name: str) -> str:
    base = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{index:04d}-{_SAFE_NAME.sub('_', base)[:60] or 'photo'}.png"


def read_photos(data: bytes) -> list[Photo]:
    """Validate an uploaded zip of photos; return them normalised, in archive order."""
    if len(data) > settings.POC_UPLOAD_MAX_BYTES:
        raise InvalidPhotoZip(
            f"the zip is {len(data)} bytes; at most {settings.POC_UPLOAD_MAX_BYTES} are accepted"
        )
    if not data:
        raise InvalidPhotoZip("the uploaded file is empty")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise InvalidPhotoZip("the upload is not a zip archive") from None
    with archive:
        photos = []
        for index, info in enumerate(_members(archive), start=1):
            raw = _read_capped(archive, info)
            try:
                image = validate_image(raw)
            except DomainError as exc:
                raise InvalidPhotoZip(
                    f"member {info.filename!r} is not a usable photo: {exc.message}"
                ) from None
            photos.append(Photo(_safe_name(index, info.filename), info.filename, image.png))
    return photos


def pack(photos: list[Photo]) -> bytes:
    """A fresh zip of the validated PNGs under their safe names (stored, not deflated:
    PNGs are compressed already, and fixed timestamps keep the bytes reproducible)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for photo in photos:
            info = zipfile.ZipInfo(photo.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, photo.png)
    return buffer.getvalue()


def unpack(data: bytes, folder) -> int:
    """Write a zip made by :func:`pack` into ``folder`` (the worker's side); re-checks the
    names so a stored archive can never write outside ``folder``. Returns the count."""
    from pathlib import Path

    folder = Path(folder)
    count = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = info.filename
            if "/" in name or not re.fullmatch(r"\d{4}-[A-Za-z0-9._-]+\.png", name):
                raise InvalidPhotoZip(f"stored photo archive holds an unexpected name {name!r}")
            (folder / name).write_bytes(archive.read(info))
            count += 1
    return count
