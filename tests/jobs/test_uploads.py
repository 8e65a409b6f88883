"""The bad-input corpus through POST /api/v1/jobs: right status, named problem, nothing stored.

Every input is generated here. Rejections must leave no EditJob, no Artifact and no
file behind; accepted oddities must be normalised (RGB PNG, orientation applied,
metadata stripped).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from editplatform.jobs.models import Artifact, EditJob
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import api_client, stored_files, submit_via_api

REJECTED = [
    # (id, bytes factory, file name, status, words the message must contain)
    ("empty", lambda: b"", "photo.jpg", 400, "empty"),
    ("truncated-jpeg", lambda: images.jpeg((200, 150))[:-600], "photo.jpg", 400, "truncated"),
    (
        "truncated-png",
        lambda: images.png((200, 150))[: len(images.png((200, 150))) // 2],
        "photo.png",
        400,
        "PNG",
    ),
    (
        "corrupt-jpeg-body",
        lambda: images.jpeg()[:200] + b"\x00garbage" * 50,
        "photo.jpg",
        400,
        "JPEG",
    ),
    (
        "text-behind-jpg-name",
        lambda: b"hello, this is not a photo\n" * 20,
        "photo.jpg",
        415,
        "only JPEG, PNG or WebP",
    ),
    ("svg", lambda: images.SVG, "photo.png", 415, "SVG"),
    ("html", lambda: images.HTML, "photo.jpg", 415, "HTML"),
    ("pdf", lambda: images.PDF, "photo.jpg", 415, "PDF"),
    ("png-bomb-100k-x-100k", images.png_bomb, "photo.png", 413, "pixels"),
    ("gif", images.gif, "photo.png", 415, "GIF"),
    ("animated-gif", images.animated_gif, "photo.gif", 415, "GIF"),
    ("animated-webp", images.animated_webp, "photo.webp", 400, "animated"),
    ("tiff", images.tiff, "photo.jpg", 415, "TIFF"),
    ("bmp", images.bmp, "photo.png", 415, "BMP"),
    ("zip", lambda: b"PK\x03\x04" + b"\x00" * 100, "photo.jpg", 415, "ZIP"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "factory", "filename", "status", "words"), REJECTED, ids=[r[0] for r in REJECTED]
)
def test_bad_input_is_rejected_and_leaves_nothing(
    name, factory, filename, status, words, requester, isolated_storage, model_bundle
):
    response = submit_via_api(api_client(requester), factory(), name=filename)
    assert response.status_code == status, response.content
    body = response.json()
    assert words.lower() in body["detail"].lower(), body
    assert body["field"] == "image" and body["code"]
    assert EditJob.objects.count() == 0
    assert Artifact.objects.count() == 0
    assert stored_files(isolated_storage) == []


@pytest.mark.django_db
def test_too_many_bytes_is_413(requester, isolated_storage, model_bundle, settings):
    settings.UPLOAD_MAX_BYTES = 50_000
    data = images.noise_png((150, 150))  # about 67 kB, a valid PNG
    assert len(data) > settings.UPLOAD_MAX_BYTES
    response = submit_via_api(api_client(requester), data)
    assert response.status_code == 413
    assert "limit is 50000 bytes" in response.json()["detail"]
    assert EditJob.objects.count() == 0 and stored_files(isolated_storage) == []


@pytest.mark.django_db
def test_too_many_pixels_by_setting_is_413(requester, isolated_storage, model_bundle, settings):
    settings.UPLOAD_MAX_PIXELS = 100 * 100
    response = submit_via_api(api_client(requester), images.png((120, 100)))
    assert response.status_code == 413
    assert "12000 pixels" in response.json()["detail"]
    assert EditJob.objects.count() == 0 and stored_files(isolated_storage) == []


def _stored_original(job: EditJob) -> Image.Image:
    from editplatform.jobs import artifacts

    data = artifacts.read(job.original)
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


ACCEPTED = [
    ("jpeg", images.jpeg, "JPEG", (64, 48)),
    ("png", images.png, "PNG", (64, 48)),
    ("webp", images.webp, "WEBP", (64, 48)),
    ("cmyk-jpeg", images.cmyk_jpeg, "JPEG", (64, 48)),
    ("png-16-bit", images.png16, "PNG", (64, 48)),
    ("palette-alpha-png", images.palette_alpha_png, "PNG", (40, 20)),
    ("rgba-png", images.rgba_png, "PNG", (64, 48)),
    ("greyscale-jpeg", images.grey_jpeg, "JPEG", (64, 48)),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "factory", "fmt", "size"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_odd_but_valid_images_are_normalised_to_rgb_png(
    name, factory, fmt, size, requester, isolated_storage, model_bundle
):
    response = submit_via_api(api_client(requester), factory(), name="upload.bin")
    assert response.status_code == 201, response.content
    job = EditJob.objects.get(pk=response.json()["id"])
    assert job.upload_format == fmt
    img = _stored_original(job)
    assert img.format == "PNG" and img.mode == "RGB" and img.size == size
    assert not img.info.get("exif") and not img.info.get("icc_profile")
    assert len(stored_files(isolated_storage)) == 1
    if name == "palette-alpha-png":  # transparent pixels composited on white, opaque ones kept
        assert img.getpixel((5, 5)) == (255, 255, 255)
        assert img.getpixel((30, 5)) == (255, 0, 0)
    if name == "png-16-bit":  # the 16-bit ramp is scaled, not clipped to white
        assert img.getpixel((0, 0))[0] < 10 and img.getpixel((63, 47))[0] > 245


@pytest.mark.django_db
def test_exif_rotated_jpeg_is_turned_upright_and_stripped(
    requester, isolated_storage, model_bundle
):
    data, stored = images.exif_rotated_jpeg()
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    response = submit_via_api(api_client(requester), data, name="portrait.jpg")
    assert response.status_code == 201, response.content
    img = _stored_original(EditJob.objects.get(pk=response.json()["id"]))
    # Orientation 6: the stored 60x30 image displays as 30x60, top-left red block moves top-right.
    assert img.size == (30, 60)
    r, g, b = img.getpixel((25, 4))
    assert r > 200 and g < 60 and b < 60
    assert img.getpixel((4, 55)) == (255, 255, 255) or sum(img.getpixel((4, 55))) > 700
    assert not img.info.get("exif"), "EXIF (with its GPS block) must not reach storage"
    assert b"TestCam" not in open(stored_files(isolated_storage)[0], "rb").read()


@pytest.mark.django_db
def test_same_photo_twice_is_stored_once(requester, isolated_storage, model_bundle):
    client = api_client(requester)
    first = submit_via_api(client, images.png())
    second = submit_via_api(client, images.png(), edits=catalog.request_json(fraction=0.25))
    assert first.status_code == second.status_code == 201
    assert EditJob.objects.count() == 2 and Artifact.objects.count() == 1
    assert len(stored_files(isolated_storage)) == 1
    sha = first.json()["artifacts"]["original"]["sha256"]
    assert stored_files(isolated_storage)[0].name == f"{sha}.sealed"  # encrypted at rest
    assert stored_files(isolated_storage)[0].parent.parent.name == sha[:2]


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (9, 1), (33, 17), (640, 480)])
def test_stored_png_keeps_every_pixel_and_nothing_else(size):
    """encode_png (the submit path's cheap encoding) is lossless, bare and deterministic."""
    import numpy as np

    from editplatform.jobs.uploads import encode_png

    width, height = size
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), np.uint8)
    source = Image.fromarray(pixels, "RGB")
    source.info["exif"] = b"Exif\x00\x00GPS"  # nothing of the source's info may be written
    png = encode_png(source)
    assert png == encode_png(Image.fromarray(pixels.copy(), "RGB"))  # a function of the pixels
    decoded = Image.open(io.BytesIO(png))
    decoded.load()
    assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == size
    assert np.array_equal(np.asarray(decoded), pixels)
    assert decoded.info == {} and b"GPS" not in png
    chunks, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        chunks.append(png[at + 4 : at + 8])
        at += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and set(chunks[1:-1]) == {b"IDAT"}
