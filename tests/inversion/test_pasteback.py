"""Paste-back: full-resolution output, pixel-exact outside the mask, both modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.align import AlignmentTransform, TransformError
from inversion.align.transform import square_quad
from inversion.pasteback import feather_weights, paste_back, paste_mask


def _photo(w=300, h=200, seed=0) -> tuple[Image.Image, np.ndarray]:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a), a


def _rotated(center=(250.0, 60.0), half=70.0, angle=30.0, size=64, source=(300, 200)):
    t = np.radians(angle)
    x = half * np.array([np.cos(t), np.sin(t)])
    y = half * np.array([-np.sin(t), np.cos(t)])
    return AlignmentTransform(tuple(map(tuple, square_quad(center, x, y))), size, source, "test")


def test_delta_changes_nothing_outside_the_mask_and_keeps_the_photo_size():
    photo, a = _photo()
    t = _rotated()  # rotated, and partly off the photo's right and top edges
    rng = np.random.default_rng(1)
    rec = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    edited = np.clip(rec + rng.uniform(-60, 60, rec.shape), 0, 255).astype(np.float32)
    out = np.asarray(paste_back(photo, t, edited, rec, mode="delta", feather=0.1))
    assert out.shape == a.shape
    mask = paste_mask(t, feather=0.1)
    changed = (out != a).any(2)
    assert changed[mask == 0].sum() == 0  # pixel-exact outside the mask
    assert changed[mask > 0.5].mean() > 0.9  # and the edit is there inside it
    assert (mask == 0).sum() > 0.6 * mask.size  # most of the photo is outside


def test_replace_puts_the_crop_in_the_middle_and_blends_the_feather():
    photo, a = _photo()
    t = _rotated(center=(150.0, 100.0), half=60.0, angle=-15.0)
    crop = np.full((16, 16, 3), (10, 200, 30), dtype=np.uint8)
    out = np.asarray(paste_back(photo, t, Image.fromarray(crop), mode="replace", feather=0.2))
    mask = paste_mask(t, feather=0.2)
    assert (out[mask == 1.0] == (10, 200, 30)).all()
    assert ((out != a).any(2))[mask == 0].sum() == 0
    band = (mask > 0.2) & (mask < 0.8)
    expect = a[band] * (1 - mask[band, None]) + mask[band, None] * np.array([10, 200, 30])
    assert np.abs(out[band].astype(float) - expect).max() <= 0.5 + 1e-9


def test_zero_edit_returns_the_photo_bit_for_bit():
    photo, a = _photo()
    t = _rotated()
    rec = torch.rand(1, 3, 32, 32) * 2 - 1  # generator tensors in [-1, 1]
    out = paste_back(photo, t, rec.clone(), rec, mode="delta")
    assert np.array_equal(np.asarray(out), a)


def test_crop_resolution_does_not_matter_for_a_constant_delta():
    photo, a = _photo()
    t = _rotated(center=(150.0, 100.0), half=60.0, angle=10.0)
    outs = []
    for res in (8, 32, 128):
        rec = np.full((res, res, 3), 100.0, dtype=np.float32)
        outs.append(np.asarray(paste_back(photo, t, rec + 20, rec, feather=0.1)))
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])
    mask = paste_mask(t, feather=0.1)
    inner = mask == 1.0
    assert np.array_equal(outs[0][inner], np.clip(a[inner].astype(int) + 20, 0, 255))


def test_feather_weights_shape():
    u = np.linspace(-0.1, 1.1, 121)
    w = feather_weights(u, np.full_like(u, 0.5), feather=0.1, inset=0.05)
    assert w[u <= 0.05].max() == 0 and w[u >= 0.95].max() == 0
    assert w[(u >= 0.15) & (u <= 0.85)].min() == 1
    left = w[(u > 0.05) & (u < 0.15)]
    assert (np.diff(left) >= 0).all()


def test_paste_back_refuses_bad_input():
    photo, _ = _photo()
    t = _rotated()
    crop = np.zeros((32, 32, 3), dtype=np.float32)
    with pytest.raises(TransformError):
        paste_back(photo.resize((299, 200)), t, crop, crop)
    with pytest.raises(ValueError, match="needs the reconstructed"):
        paste_back(photo, t, crop)
    with pytest.raises(ValueError, match="mode"):
        paste_back(photo, t, crop, crop, mode="blend")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ"):
        paste_back(photo, t, crop, np.zeros((16, 16, 3)))


def test_crop_then_paste_replace_reproduces_the_photo_inside():
    # a smooth photo: resampling there and back loses almost nothing
    yy, xx = np.mgrid[0:200, 0:300]
    a = np.stack([xx * 0.8, yy * 1.2, (xx + yy) * 0.5], -1).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(a)
    t = _rotated(center=(150.0, 100.0), half=60.0, angle=20.0, size=128)
    stored = AlignmentTransform.from_json(t.to_json())
    out = np.asarray(paste_back(photo, stored, t.crop(photo), mode="replace", feather=0.05))
    mask = paste_mask(t, feather=0.05)
    assert ((out != a).any(2))[mask == 0].sum() == 0
    assert np.abs(out.astype(int) - a)[mask > 0].max() <= 2
