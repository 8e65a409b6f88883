"""FFHQ alignment on a real portrait (matplotlib's grace_hopper.jpg) with dlib's 5 points."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from inversion.align import (
    FaceIndexOutOfRange,
    MultipleFaces,
    NoFaceFound,
    align,
)
from inversion.align.ffhq import (
    FaceDetector,
    _dlib_models,
    landmark_model_path,
    quad_from_5,
    quad_from_68,
)
from inversion.pasteback import paste_back, paste_mask


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return Image.open(path).convert("RGB")  # 512x600, one face


def test_packaged_models_are_found_and_five_points_is_the_default():
    assert landmark_model_path(5).name == "shape_predictor_5_face_landmarks.dat"
    assert landmark_model_path(68).is_file()
    assert FaceDetector().landmarks == 5
    with pytest.raises(ValueError):
        FaceDetector(landmarks=7)  # type: ignore[arg-type]


def test_dlib_finds_the_five_landmarks_on_the_portrait(portrait):
    faces = FaceDetector().detect(portrait)
    assert len(faces) == 1
    face = faces[0]
    assert face.points.shape == (5, 2) and face.scheme == 5
    left, top, right, bottom = face.box
    inside = (
        (face.points[:, 0] > left)
        & (face.points[:, 0] < right)
        & (face.points[:, 1] > top)
        & (face.points[:, 1] < bottom)
    )
    assert inside.all()
    eyes_y = face.points[:4, 1].mean()
    assert face.points[4, 1] > eyes_y + 0.15 * (bottom - top)  # the nose is below the eyes


def test_ffhq_transform_levels_and_centres_the_eyes(portrait):
    t = align(portrait, "ffhq", 256)
    assert t.method == "ffhq" and t.meta["landmarks"] == "dlib-5" and t.meta["faces_found"] == 1
    pts = np.asarray(t.meta["points"])
    eyes = t.to_crop(np.stack([pts[0:2].mean(0), pts[2:4].mean(0)])) / 256
    assert abs(eyes[:, 0].sum() - 1.0) < 0.03  # symmetric about the vertical axis
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.01  # level
    assert 0.35 < eyes[:, 1].mean() < 0.5  # FFHQ puts the eyes just above the middle
    crop = t.crop(portrait)
    assert crop.size == (256, 256)


def test_five_point_quad_stays_close_to_the_68_point_reference(portrait):
    det, p5 = _dlib_models(5)
    _, p68 = _dlib_models(68)
    arr = np.asarray(portrait)
    rect = det(arr, 1)[0]
    s5, s68 = p5(arr, rect), p68(arr, rect)
    pts5 = np.array([(p.x + 0.5, p.y + 0.5) for p in s5.parts()])
    pts68 = np.array([(p.x + 0.5, p.y + 0.5) for p in s68.parts()])
    ref, got = quad_from_68(pts68), quad_from_5(pts5)
    qsize = np.hypot(*(ref[3] - ref[0]))
    deviation = np.hypot(*(got - ref).T) / qsize
    assert deviation.max() < 0.08  # measured 6.1 % on this photo (docs/quality.md)


def test_no_face_and_several_faces_are_typed_errors(portrait):
    blank = Image.fromarray(
        np.random.default_rng(0).integers(90, 110, (300, 300, 3), dtype=np.uint8)
    )
    with pytest.raises(NoFaceFound):
        align(blank, "ffhq", 64)
    w, h = portrait.size
    pair = Image.new("RGB", (2 * w, h))
    pair.paste(portrait, (0, 0))
    pair.paste(portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (w, 0))
    with pytest.raises(MultipleFaces) as info:
        align(pair, "ffhq", 64)
    assert info.value.count == 2 and "face index" in str(info.value)
    right = align(pair, "ffhq", 64, face_index=1)
    assert right.quad_array[:, 0].mean() > w and right.meta["face_index"] == 1
    with pytest.raises(FaceIndexOutOfRange):
        align(pair, "ffhq", 64, face_index=2)


def test_alignment_and_paste_back_round_trip_on_the_portrait(portrait):
    a = np.asarray(portrait)
    t = align(portrait, "ffhq", 512)
    crop = t.crop(portrait)
    # identity edit in delta mode: the photo comes back bit for bit
    same = paste_back(portrait, t, crop, crop, mode="delta")
    assert np.array_equal(np.asarray(same), a)
    # the crop itself pasted back: unchanged outside the feather, nearly so inside
    out = np.asarray(paste_back(portrait, t, crop, mode="replace", feather=0.1))
    assert out.shape == a.shape
    mask = paste_mask(t, feather=0.1)
    assert ((out != a).any(2))[mask == 0].sum() == 0
    err = np.abs(out.astype(float) - a)[mask > 0]
    assert err.mean() < 2.0
    mse = ((out.astype(float) - a) ** 2)[mask > 0].mean()
    assert 10 * np.log10(255**2 / mse) > 35
    # a real edit (brighter crop) changes the face, not the rest
    brighter = Image.fromarray(np.clip(np.asarray(crop).astype(int) + 40, 0, 255).astype(np.uint8))
    edited = np.asarray(paste_back(portrait, t, brighter, crop, mode="delta"))
    changed = (edited != a).any(2)
    assert changed[mask == 0].sum() == 0 and changed[mask == 1].mean() > 0.9
