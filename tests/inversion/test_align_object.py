"""Object alignment on generated catalogue photos: Fashion-MNIST items on large canvases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.align import NoObjectFound, align
from inversion.align.object import DEMO_MARGIN, align_object, find_subject
from inversion.align.synthetic import CANVAS_TONES, catalogue_canvas
from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

TONES = CANVAS_TONES


@pytest.fixture(scope="module")
def items() -> np.ndarray:
    root = ensure_fashion_mnist()
    return read_idx(root / FASHION_FILES["test"][0])[:60]  # held-out test split, 28x28 uint8


_canvas = catalogue_canvas


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_finds_items_on_catalogue_canvases(items):
    rng = np.random.default_rng(0)
    ious = []
    for i in range(24):
        bg, tint = TONES[i % len(TONES)]
        size = (512, 512) if i % 3 else (640, 480)
        scale = int(rng.integers(4, 11))
        canvas, truth = _canvas(
            items[i],
            bg,
            tint,
            size=size,
            scale=scale,
            pos=tuple(rng.uniform(0.02, 0.98, 2)),
            seed=i,
            gradient=6.0 if i % 4 == 0 else 0.0,
        )
        found = find_subject(canvas)
        ious.append(_iou(found.box, truth))
        assert np.abs(np.array(found.background) - bg).max() <= 6
    ious = np.array(ious)
    assert ious.min() > 0.8, ious.round(3)
    assert np.median(ious) > 0.9, ious.round(3)


def test_transform_frames_the_item_like_the_demo_domain(items):
    canvas, truth = _canvas(items[3], (250, 250, 250), (40, 40, 40), scale=6, pos=(0.9, 0.1))
    t = align(canvas, "object", 32)
    assert t.method == "object" and t.pad_mode == "constant" and t.output_size == 32
    assert np.abs(np.array(t.fill) - 250).max() <= 6
    assert abs(t.angle_degrees) < 1e-9
    # the item's box, mapped into the crop, fills (1 - 2 margin) of it along its long side
    (u0, v0), (u1, v1) = t.to_crop([truth[0], truth[1]]), t.to_crop([truth[2], truth[3]])
    long_side = max(u1 - u0, v1 - v0)
    assert long_side == pytest.approx(32 * (1 - 2 * DEMO_MARGIN), abs=1.0)
    assert (u0 + u1) / 2 == pytest.approx(16, abs=1.0) and (v0 + v1) / 2 == pytest.approx(
        16, abs=1.0
    )
    crop = np.asarray(t.crop(canvas))
    assert crop.shape == (32, 32, 3)
    assert crop[:2].min() > 200 and crop[-2:].min() > 200  # margins are background


def test_item_near_the_edge_is_padded_with_the_background(items):
    canvas, _ = _canvas(items[5], (128, 128, 128), (250, 250, 250), scale=10, pos=(0.0, 1.0))
    t = align_object(canvas, 64, margin=0.2)
    assert t.quad_array[:, 0].min() < 0 or t.quad_array[:, 1].max() > canvas.size[1]
    crop = np.asarray(t.crop(canvas)).astype(int)
    assert np.abs(crop[:3, :3] - 128).max() <= 12  # padded corner is background grey, not black


def test_plain_canvas_is_a_typed_error():
    rng = np.random.default_rng(0)
    for tone in (250, 128, 10):
        arr = np.clip(tone + rng.normal(0, 3, (400, 600, 3)), 0, 255).astype(np.uint8)
        with pytest.raises(NoObjectFound, match="no subject"):
            align(Image.fromarray(arr), "object", 32)


def test_a_speck_is_too_small_to_be_a_subject():
    arr = np.full((512, 512, 3), 240, dtype=np.uint8)
    arr[100:110, 200:210] = 0  # survives the opening, but 0.04 % of the photo
    with pytest.raises(NoObjectFound, match="larger"):
        find_subject(Image.fromarray(arr), min_area=0.001)


def test_components_are_eight_connected_and_kept_apart():
    """Diagonal neighbours join one component; pixels with a gap between them do not
    (the subject is the largest component plus those at least keep_fraction of it)."""
    from inversion.align.object import _components

    mask = torch.zeros((6, 8))
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1  # a diagonal line: one component
    mask[0, 5:8] = 1  # apart from it by two columns
    mask[5, 0] = 1  # a lone pixel
    labels = _components(mask)
    assert labels.shape == mask.shape and labels.dtype == torch.long
    assert (labels[mask == 0] == 0).all() and (labels[mask > 0] > 0).all()
    diagonal = {int(labels[i, i]) for i in range(3)}
    assert len(diagonal) == 1
    bar = {int(v) for v in labels[0, 5:8]}
    assert len(bar) == 1
    assert len(diagonal | bar | {int(labels[5, 0])}) == 3


def test_subject_of_two_pieces_keeps_both_boxes_and_drops_a_small_one():
    arr = np.full((256, 256, 3), 235, dtype=np.uint8)
    arr[60:120, 40:100] = 20  # the item's two halves (a pair of shoes), 30 px apart
    arr[60:120, 130:190] = 20
    arr[200:204, 10:14] = 20  # a speck far away: under keep_fraction of the largest
    found = find_subject(Image.fromarray(arr), close_px=5)
    assert found.box == (40.0, 60.0, 190.0, 120.0)
