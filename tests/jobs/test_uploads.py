"""The bad-input corpus through POST /api/v1/jobs: right status, named problem, nothing stored.

Every input is generated here. Rejections must leave no EditJob, no Artifact and no
file behind. Accepted uploads are stored without re-encoding (their compressed pixels
byte for byte, metadata removed) and normalised where pixels are needed (RGB,
orientation applied): docs/submit-path.md.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from editplatform.jobs import keyed_ids
from editplatform.jobs.models import Artifact, EditJob
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import api_client, stored_files, submit_via_api
from tests.jobs.helpers import logged


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) claims another size: a decompression bomb."""
    data = bytearray(images.jpeg((64, 48)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _big_progressive_jpeg_cut() -> bytes:
    """A 1-megapixel progressive JPEG cut short: found by the reduced (1/8) decode too."""
    data = images.encode(images._photo((1152, 864)), "JPEG", quality=90, progressive=True)
    return data[: len(data) * 2 // 3]


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
    ("jpeg-bomb-60k-x-60k", lambda: _jpeg_declaring(60_000, 60_000), "photo.jpg", 413, "pixels"),
    ("truncated-1mp-progressive-jpeg", _big_progressive_jpeg_cut, "p.jpg", 400, "truncated"),
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


def _stored_bytes(job: EditJob) -> bytes:
    from editplatform.jobs import artifacts

    return artifacts.read(job.original)


def _decoded(data: bytes) -> Image.Image:
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
def test_odd_but_valid_images_are_stored_as_uploaded_and_normalise_to_rgb(
    name, factory, fmt, size, requester, isolated_storage, model_bundle
):
    import hashlib

    from editplatform.jobs.normalise import decode_original

    data = factory()
    response = submit_via_api(api_client(requester), data, name="upload.bin")
    assert response.status_code == 201, response.content
    job = EditJob.objects.get(pk=response.json()["id"])
    assert job.upload_format == fmt
    stored = _stored_bytes(job)
    # No metadata in these uploads: the stored original is the upload itself, not re-encoded.
    assert stored == data
    assert job.original_id == job.upload_sha256 == hashlib.sha256(data).hexdigest()
    assert job.original.media_type == f"image/{fmt.lower()}"
    assert (job.original.width, job.original.height) == size
    assert len(stored_files(isolated_storage)) == 1
    img = decode_original(stored)  # what the worker computes on
    assert img.mode == "RGB" and img.size == size
    if name == "palette-alpha-png":  # transparent pixels composited on white, opaque ones kept
        assert img.getpixel((5, 5)) == (255, 255, 255)
        assert img.getpixel((30, 5)) == (255, 0, 0)
    if name == "png-16-bit":  # the 16-bit ramp is scaled, not clipped to white
        assert img.getpixel((0, 0))[0] < 10 and img.getpixel((63, 47))[0] > 245


@pytest.mark.django_db
def test_exif_rotated_jpeg_keeps_its_pixels_loses_its_metadata_and_turns_upright(
    requester, isolated_storage, model_bundle
):
    import hashlib

    import numpy as np

    from audit.models import AuditEvent
    from editplatform.jobs.normalise import decode_original

    data, _ = images.exif_rotated_jpeg()
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    response = submit_via_api(api_client(requester), data, name="portrait.jpg")
    assert response.status_code == 201, response.content
    job = EditJob.objects.get(pk=response.json()["id"])
    stored = _stored_bytes(job)
    assert b"TestCam" not in stored
    exif = _decoded(stored).getexif()
    assert dict(exif) == {0x0112: 6}, "only the orientation survives (no Make, no GPS IFD)"
    # Not re-encoded: the same compressed pixels, so exactly the upload's pixels.
    assert np.array_equal(np.asarray(_decoded(stored)), np.asarray(_decoded(data)))
    assert stored[stored.index(b"\xff\xda") :] == data[data.index(b"\xff\xda") :]
    # Two hashes: the upload as sent, and the stored original the log names.
    assert job.upload_sha256 == hashlib.sha256(data).hexdigest()
    assert job.original_id == hashlib.sha256(stored).hexdigest() != job.upload_sha256
    submitted = AuditEvent.objects.get(action="job.submitted", subject=f"job:{job.pk}")
    # (as keyed values since the keyed-ids cut-over: editplatform.jobs.keyed_ids)
    assert submitted.payload["original_sha256"] == logged(job.original_id)
    assert keyed_ids.confirm_derived(
        submitted.payload["upload_sha256"], "upload_sha256", job.upload_sha256, job.original
    )
    # Orientation 6: the stored 60x30 image displays as 30x60, top-left red block moves top-right.
    assert (job.original.width, job.original.height) == (30, 60)
    img = decode_original(stored)
    assert img.size == (30, 60)
    r, g, b = img.getpixel((25, 4))
    assert r > 200 and g < 60 and b < 60
    assert sum(img.getpixel((4, 55))) > 700


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
    """encode_png (normalised pixels as a file, for provenance checks) is lossless and bare."""
    import numpy as np

    from editplatform.jobs.normalise import encode_png

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
