"""Untrusted image bytes -> checked image -> RGB -> encoder tensor, and back."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.errors import ImageTooLarge, InvalidImage, UnsupportedImageFormat
from inversion.preprocess import (
    center_crop_square,
    image_to_tensor,
    load_image_bytes,
    tensor_to_images,
    to_rgb,
)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 40, h: int = 30) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None, None]
    arr = np.concatenate(
        [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 128.0)],
        axis=2,
    )
    return Image.fromarray(arr.astype(np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_load_fully(fmt: str) -> None:
    img = load_image_bytes(encode(gradient(), fmt))
    assert img.format == fmt and img.size == (40, 30)
    assert to_rgb(img).mode == "RGB"


def test_format_detected_from_content_not_allowed() -> None:
    with pytest.raises(UnsupportedImageFormat, match="GIF.*allowed: JPEG, PNG, WEBP"):
        load_image_bytes(encode(gradient(), "GIF"))
    with pytest.raises(UnsupportedImageFormat, match="BMP"):
        load_image_bytes(encode(gradient(), "BMP"))
    # a narrower allow-list is honoured
    with pytest.raises(UnsupportedImageFormat):
        load_image_bytes(encode(gradient(), "PNG"), allowed_formats={"JPEG"})


def test_garbage_empty_and_truncated_are_invalid() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        load_image_bytes(b"")
    with pytest.raises(InvalidImage, match="not a recognised image"):
        load_image_bytes(b"%PDF-1.4 definitely not an image" * 10)
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    for fmt in ("PNG", "JPEG"):
        data = encode(noisy, fmt)
        with pytest.raises(InvalidImage, match="truncated or corrupt"):
            load_image_bytes(data[: len(data) // 2])


def test_pixel_and_byte_limits() -> None:
    data = encode(gradient(100, 100), "PNG")
    assert load_image_bytes(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageTooLarge, match="10000 pixels; the limit is 9999"):
        load_image_bytes(data, max_pixels=9_999)
    with pytest.raises(ImageTooLarge, match="bytes"):
        load_image_bytes(data, max_bytes=10)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding() -> None:
    # The limit is checked on the header: these images are never decoded (they could
    # not be: there is no pixel data), so refusal costs nothing.
    with pytest.raises(ImageTooLarge, match="5000x5000"):
        load_image_bytes(_png_header_only(5000, 5000), max_pixels=1_000_000)
    # far beyond Pillow's own bomb threshold: still a typed ImageTooLarge
    with pytest.raises(ImageTooLarge):
        load_image_bytes(_png_header_only(100_000, 100_000), max_pixels=10**12)
    # within the limits, the missing data is found by the full decode
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        load_image_bytes(_png_header_only(50, 50))


def test_animated_images_refused() -> None:
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    for fmt in ("PNG", "WEBP"):
        buf = io.BytesIO()
        frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100)
        with pytest.raises(InvalidImage, match="animated"):
            load_image_bytes(buf.getvalue())


def test_exif_orientation_applied() -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    loaded = load_image_bytes(encode(img, "JPEG", exif=exif, quality=95))
    rgb = to_rgb(loaded)
    assert rgb.size == (20, 40)
    top = np.asarray(rgb)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the blue half is now on top


def test_modes_converted_to_rgb() -> None:
    # RGBA: transparent pixels become white, opaque ones keep their colour
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 255, 0, 255))
    out = np.asarray(to_rgb(rgba))
    assert tuple(out[1, 1]) == (255, 255, 255) and tuple(out[0, 0]) == (0, 255, 0)
    # LA
    la = Image.new("LA", (2, 2), (0, 0))
    assert tuple(np.asarray(to_rgb(la))[0, 0]) == (255, 255, 255)
    # palette with a transparent index
    p = Image.new("P", (2, 2), 0)
    p.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    p.info["transparency"] = 0
    assert tuple(np.asarray(to_rgb(p))[0, 0]) == (255, 255, 255)
    del p.info["transparency"]
    assert tuple(np.asarray(to_rgb(p))[0, 0]) == (10, 20, 30)
    # CMYK
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    assert tuple(np.asarray(to_rgb(cmyk))[0, 0]) == (255, 0, 0)
    # 16-bit greyscale is scaled, not clipped
    i16 = Image.fromarray(np.array([[0, 65535], [257 * 100, 300]], dtype=np.uint16))
    assert i16.mode.startswith("I;16")
    out = np.asarray(to_rgb(i16))
    assert out[0, 1, 0] == 255 and out[1, 0, 0] == 100 and out[1, 1, 0] == 1
    # L
    assert tuple(np.asarray(to_rgb(Image.new("L", (1, 1), 77)))[0, 0]) == (77, 77, 77)


def test_centre_crop_and_tensor_range() -> None:
    img = Image.new("RGB", (60, 20), (0, 0, 0))
    img.paste((255, 255, 255), (20, 0, 40, 20))  # white centre square, black bars
    sq = center_crop_square(img)
    assert sq.size == (20, 20) and np.asarray(sq).min() == 255
    x = image_to_tensor([img, gradient()], 16)
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[0], torch.ones_like(x[0]))  # only the white square is left


def test_tensor_to_images_round_trip() -> None:
    img = gradient(16, 16)
    x = image_to_tensor(img, 16)
    back = tensor_to_images(x)[0]
    assert back.size == (16, 16) and np.array_equal(np.asarray(back), np.asarray(img))
    # out-of-range generator values are clamped, and the output can be resized
    big = tensor_to_images(torch.full((1, 3, 8, 8), 3.0), size=32)[0]
    assert big.size == (32, 32) and np.asarray(big).min() == 255
