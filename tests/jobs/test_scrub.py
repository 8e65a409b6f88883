"""Metadata removal without re-encoding (editplatform.jobs.scrub): pure bytes, no services.

For every accepted kind of upload: the scrubbed file decodes to exactly the upload's
pixels, keeps its orientation and colour profile, and carries none of the planted
metadata (EXIF make and GPS, XMP, comments, text chunks, trailing data).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from editplatform.jobs.scrub import ScrubError, scrub
from inversion.preprocess import check_image_bytes
from tests.jobs import images

SECRET = b"Sensitive-Owner-Name"


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = SECRET.decode()  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS IFD
    return exif.tobytes()


def _jpeg_with_everything(orientation=6, progressive=False) -> bytes:
    data = images.encode(
        images._photo((96, 64)),
        "JPEG",
        quality=90,
        exif=_exif(orientation),
        icc_profile=_srgb_icc(),
        progressive=progressive,
        comment=SECRET,
    )
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>" + SECRET + b"</x:xmpmeta>"
    app1 = b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
    return data[:2] + app1 + data[2:] + b"TRAILER" + SECRET  # XMP and a vendor trailer


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_with_everything(orientation=3) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", SECRET.decode())
    info.add_itxt("Comment", SECRET.decode(), zip=True)
    img = images._photo((50, 40))
    return images.encode(img, "PNG", pnginfo=info, exif=_exif(orientation)) + SECRET


def _webp_with_everything(orientation=8) -> bytes:
    img = images._photo((50, 40))
    return images.encode(
        img, "WEBP", lossless=True, exif=_exif(orientation), xmp=b"<x>" + SECRET + b"</x>"
    )


def _pixels(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


CASES = [
    ("jpeg", _jpeg_with_everything, 6),
    ("progressive-jpeg", lambda: _jpeg_with_everything(5, progressive=True), 5),
    ("png", _png_with_everything, 3),
    ("webp", _webp_with_everything, 8),
]


@pytest.mark.parametrize(("name", "factory", "orientation"), CASES, ids=[c[0] for c in CASES])
def test_metadata_goes_pixels_and_orientation_stay(name, factory, orientation):
    data = factory()
    assert SECRET in data
    checked = check_image_bytes(data)
    assert checked.orientation == orientation
    clean = scrub(data, checked.format, checked.orientation)
    assert SECRET not in clean and b"GPS" not in clean and b"TRAILER" not in clean
    assert np.array_equal(_pixels(clean), _pixels(data))
    again = check_image_bytes(clean)  # still a valid file of the same kind, same orientation
    assert (again.format, again.orientation, again.width, again.height) == (
        checked.format,
        orientation,
        checked.width,
        checked.height,
    )
    assert dict(Image.open(io.BytesIO(clean)).getexif()) == {0x0112: orientation}
    assert scrub(clean, again.format, again.orientation) == clean  # a fixed point


def test_jpeg_keeps_its_colour_profile_and_compressed_data():
    data = _jpeg_with_everything(orientation=1)
    clean = scrub(data, "JPEG", 1)
    assert Image.open(io.BytesIO(clean)).info.get("icc_profile") == _srgb_icc()
    assert b"Exif" not in clean  # orientation 1 needs no EXIF at all
    scan = data.index(b"\xff\xda")
    assert clean[clean.index(b"\xff\xda") :] == data[scan : data.rindex(b"\xff\xd9") + 2]


@pytest.mark.parametrize(
    "factory", [images.jpeg, images.png, images.webp, images.cmyk_jpeg, images.palette_alpha_png]
)
def test_files_without_metadata_are_left_byte_for_byte(factory):
    data = factory()
    checked = check_image_bytes(data)
    assert scrub(data, checked.format, checked.orientation) == data


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("JPEG", b"\xff\xd8\xff\xe0\x00\x10JFIF"),  # a segment running past the end
        ("JPEG", b"\xff\xd8\x00\x00"),  # no marker where one must be
        ("PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x10\x00IHDR"),
        ("WEBP", b"RIFF\x20\x00\x00\x00WEBPVP8X\xff\x00\x00\x00"),
        ("GIF", b"GIF89a"),
    ],
)
def test_structures_the_walk_cannot_follow_are_refused(fmt, data):
    with pytest.raises(ScrubError):
        scrub(data, fmt)
