"""AlignmentTransform: exact geometry, inverse mapping, padding, storage, typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from inversion.align import AlignmentTransform, TransformError, align, center_square
from inversion.align.transform import square_quad


def _noise_image(w: int, h: int, seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a), a


def _transform(center, half, angle_deg=0.0, size=32, source=(60, 40), **kw) -> AlignmentTransform:
    t = np.radians(angle_deg)
    x = half * np.array([np.cos(t), np.sin(t)])
    y = half * np.array([-np.sin(t), np.cos(t)])
    return AlignmentTransform(
        tuple(map(tuple, square_quad(center, x, y))), size, source, "test", **kw
    )


def test_center_square_crop_is_the_exact_pixels():
    img, a = _noise_image(60, 40)
    t = center_square(60, 40, 40)
    assert np.array_equal(np.asarray(t.crop(img)), a[:, 10:50])


def test_integer_quad_crop_is_the_exact_shifted_pixels():
    img, a = _noise_image(60, 40)
    # pixels 11..50 wide, 0..39 high; constant padding: reflection blurs near the edges
    t = _transform((31, 20), 20, size=40, pad_mode="constant")
    assert np.array_equal(np.asarray(t.with_output_size(40).crop(img)), a[:, 11:51])


def test_forward_and_inverse_mapping_agree():
    t = _transform((100.0, 80.0), 50.0, angle_deg=23.0, size=64, source=(300, 200))
    pts = np.array([[0, 0], [64, 0], [0, 64], [64, 64], [12.5, 40.25]])
    src = t.to_source(pts)
    assert np.allclose(src[:4], np.array(t.quad)[[0, 3, 1, 2]])
    assert np.allclose(t.to_crop(src), pts)
    assert t.angle_degrees == pytest.approx(23.0)
    assert t.quad_size == pytest.approx(100.0)
    assert t.scale == pytest.approx(100.0 / 64)


def test_rotated_crop_samples_the_right_place():
    # a bright square in the photo lands in the crop where the inverse map says
    photo = np.zeros((200, 300, 3), dtype=np.uint8)
    photo[70:90, 140:160] = 255
    t = _transform((150.0, 100.0), 60.0, angle_deg=30.0, size=120, source=(300, 200))
    crop = np.asarray(t.crop(Image.fromarray(photo)))[..., 0]
    u, v = t.to_crop([150.0, 80.0])
    assert crop[int(v), int(u)] > 200
    ys, xs = np.nonzero(crop > 128)
    assert abs(xs.mean() + 0.5 - u) < 1.5 and abs(ys.mean() + 0.5 - v) < 1.5


def test_quad_outside_photo_is_padded_by_reflection_or_constant():
    img, _ = _noise_image(60, 40)
    inside = Image.new("RGB", (60, 40), (200, 100, 50))
    t = _transform((5.0, 5.0), 20.0, size=40)  # top-left quarter of the quad is off the photo
    reflect = np.asarray(t.crop(inside))
    assert reflect.shape == (40, 40, 3)
    assert np.abs(reflect.astype(int) - (200, 100, 50)).max() <= 1  # no black corner
    const = _transform((5.0, 5.0), 20.0, size=40, pad_mode="constant", fill=(7, 8, 9))
    out = np.asarray(const.crop(img))
    assert (out[:10, :10] == (7, 8, 9)).all()


def test_json_round_trip_is_lossless():
    t = _transform(
        (100.5, 80.25),
        50.0,
        angle_deg=-7.0,
        size=256,
        source=(300, 200),
        pad_mode="constant",
        fill=(1, 2, 3),
        meta={"points": np.arange(4.0), "k": 1},
    )
    back = AlignmentTransform.from_json(t.to_json())
    assert back == AlignmentTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.quad == t.quad and back.fill == (1, 2, 3) and back.meta["points"] == [0, 1, 2, 3]
    assert np.allclose(back.source_to_crop_matrix(), t.source_to_crop_matrix())


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"format": "other"},
        {
            "format": "styleledger.alignment/1",
            "quad": [[0, 0]],
            "output_size": 4,
            "source_size": [8, 8],
            "method": "x",
        },
        {
            "format": "styleledger.alignment/1",
            "quad": [[0, 0], [0, 4], [4, 4], [9, 0]],
            "output_size": 4,
            "source_size": [8, 8],
            "method": "x",
        },  # not a parallelogram
        {
            "format": "styleledger.alignment/1",
            "quad": [[0, 0], [0, 4], [4, 4], [4, 0]],
            "output_size": 0,
            "source_size": [8, 8],
            "method": "x",
        },
    ],
)
def test_malformed_transform_is_a_typed_error(bad):
    with pytest.raises(TransformError):
        AlignmentTransform.from_dict(bad)
    with pytest.raises(TransformError):
        AlignmentTransform.from_json("not json")


def test_crop_refuses_a_photo_of_another_size():
    img, _ = _noise_image(61, 40)
    with pytest.raises(TransformError, match="60x40"):
        center_square(60, 40, 32).crop(img)


def test_align_dispatches_by_method_name():
    img, a = _noise_image(60, 40)
    t = align(img, "center", 40)
    assert t.method == "center" and np.array_equal(np.asarray(t.crop(img)), a[:, 10:50])
    with pytest.raises(ValueError, match="unknown alignment method"):
        align(img, "pose", 40)
