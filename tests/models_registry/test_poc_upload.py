"""The proof-of-concept upload refuses hostile or unusable zips with a 400 naming the
problem, and turns a good one into normalised PNGs under safe, flat names."""

from __future__ import annotations

import io
import zipfile

import pytest

from editplatform.models_registry import poc_upload
from editplatform.models_registry.poc_upload import InvalidPhotoZip
from tests.jobs import images
from tests.models_registry import poc_helpers as z


def refused(data: bytes) -> str:
    with pytest.raises(InvalidPhotoZip) as caught:
        poc_upload.read_photos(data)
    assert caught.value.status == 400
    return caught.value.message


def test_good_zip_is_normalised_under_safe_names(tmp_path):
    data = z.crafted_zip(
        ("shoot/a b.jpg", images.encode(images.catalogue_photo((48, 40), 0), "JPEG")),
        ("shoot/sub/ä.png", images.png((40, 40), 1)),
        ("__MACOSX/shoot/._a b.jpg", b"resource fork"),
        ("shoot/.DS_Store", b"finder"),
        ("shoot/", b""),
    )
    photos = poc_upload.read_photos(data)
    assert [p.name for p in photos] == ["0001-a_b.png", "0002-_.png"]
    assert [p.original_name for p in photos] == ["shoot/a b.jpg", "shoot/sub/ä.png"]
    assert all(p.png.startswith(b"\x89PNG") for p in photos)
    assert poc_upload.unpack(poc_upload.pack(photos), tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001-a_b.png", "0002-_.png"]
    assert poc_upload.pack(photos) == poc_upload.pack(photos)  # reproducible bytes


@pytest.mark.parametrize(
    "name, words",
    [
        ("../evil.png", "leaves the archive"),
        ("shoot/../../evil.png", "leaves the archive"),
        ("/etc/evil.png", "leaves the archive"),
        ("C:/evil.png", "leaves the archive"),
        ("shoot\\..\\evil.png", "backslash"),
        ("evil\x01.png", "control character"),
    ],
)
def test_paths_that_leave_the_archive_are_refused(name, words):
    message = refused(z.crafted_zip(("ok.png", images.png()), (name, images.png())))
    assert words in message and repr(name) in message


def test_links_encrypted_members_and_bombs_are_refused():
    assert "link or special file" in refused(z.symlink_zip())
    assert "encrypted" in refused(z.encrypted_flag_zip())
    assert "zip bomb" in refused(z.bomb_zip())


def test_only_images(settings):
    message = refused(z.crafted_zip(("a.png", images.png()), ("notes.txt", b"hello")))
    assert "'notes.txt' is not a usable photo" in message and "only JPEG, PNG or WebP" in message
    message = refused(z.crafted_zip(("cut.png", images.png()[:60])))
    assert "'cut.png' is not a usable photo" in message
    inner = z.photo_zip(1)
    assert "'inner.zip' is not a usable photo" in refused(z.crafted_zip(("inner.zip", inner)))


def test_limits(settings):
    assert "not a zip archive" in refused(b"PK\x03\x04 not really")
    assert "empty" in refused(b"")
    assert "holds no photos" in refused(z.crafted_zip(("d/", b"")))
    settings.POC_MAX_IMAGES = 2
    assert "at most 2 photos" in refused(z.photo_zip(3))
    settings.POC_MAX_IMAGES = 200
    settings.POC_UPLOAD_MAX_BYTES = 2048
    assert "at most 2048 are accepted" in refused(z.photo_zip(3))
    settings.POC_UPLOAD_MAX_BYTES = 10**8
    settings.UPLOAD_MAX_BYTES = 1024
    big = images.encode(images.catalogue_photo((200, 200), 0), "PNG")
    assert "a photo may have at most 1024" in refused(z.crafted_zip(("big.png", big)))
    settings.UPLOAD_MAX_BYTES = 10**7
    settings.POC_MAX_UNCOMPRESSED_BYTES = 2000
    assert "unpacks to" in refused(z.photo_zip(3))


def test_a_header_that_understates_the_size_is_refused():
    data = bytearray(z.crafted_zip(("a.png", images.png())))
    real = len(images.png())
    central = data.rfind(b"PK\x01\x02")
    # uncompressed size in the central directory (offset 24) and local header (offset 22)
    data[central + 24 : central + 28] = (real - 10).to_bytes(4, "little")
    data[22:26] = (real - 10).to_bytes(4, "little")
    message = refused(bytes(data))
    assert "'a.png'" in message


def test_unpack_refuses_names_it_did_not_write(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../0001-x.png", b"x")
    with pytest.raises(InvalidPhotoZip):
        poc_upload.unpack(buffer.getvalue(), tmp_path / "in")
    assert not (tmp_path / "0001-x.png").exists()
