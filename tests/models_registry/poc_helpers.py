"""Zips of photos for the proof-of-concept tests: catalogue photos (tests.jobs.images, in
the demo model's domain) and crafted hostile archives."""

from __future__ import annotations

import io
import stat
import zipfile

from tests.jobs import images


def photo_zip(count: int = 3, folder: str = "shoot/", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            data = images.encode(images.catalogue_photo((48, 40), seed=i), fmt)
            archive.writestr(f"{folder}item-{i}.{fmt.lower()}", data)
    return buffer.getvalue()


def crafted_zip(*members: tuple[str, bytes], mode: int | None = None, deflate=False) -> bytes:
    """A zip whose members are written exactly as named (``..``, absolute, backslashes)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink_zip(target: str = "/etc/passwd") -> bytes:
    return crafted_zip(("link.png", target.encode()), mode=stat.S_IFLNK | 0o777)


def encrypted_flag_zip() -> bytes:
    """A member whose header says "encrypted" (bit 0): refused before any read."""
    data = bytearray(crafted_zip(("secret.png", images.png())))
    # local header flag at offset 6; central directory header flag at offset 8
    data[6] |= 0x1
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    return bytes(data)


def bomb_zip(size: int = 8 * 1024 * 1024) -> bytes:
    return crafted_zip(("bomb.png", b"\0" * size), deflate=True)
