"""Inverter for batching workers: a sample's outputs do not depend on its batch.

``fixed_batch`` pads every pass to ``batch_size`` and uses batch-invariant kernels;
per-sample seeds and per-sample edit requests let several jobs share one pass. Without
them the same photo batched with others comes out different (random noise seeded by
batch position; gemv vs gemm and oneDNN rounding), which these tests pin down too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.errors import EditError
from inversion.inverter import Inverter
from inversion.latent import read_latent


def _photos(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(11)
    return [
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB") for _ in range(n)
    ]


def _edits(inverter: Inverter, k: int) -> dict[str, float]:
    spec = list(inverter.catalog)[k % len(list(inverter.catalog))]
    return {spec.name: spec.max_strength / (k + 2)}


def _run(inverter: Inverter, photos, edits, seeds):
    inv = inverter.invert(photos, seed=seeds)
    return inv, inverter.edit(inv, edits, seed=seeds)


@pytest.fixture(scope="module")
def fixed(random_bundle_dir: Path) -> Inverter:
    return Inverter.from_path(random_bundle_dir, batch_size=4, noise="random", fixed_batch=True)


def test_a_sample_alone_and_at_any_batch_position_is_bit_identical(fixed: Inverter) -> None:
    photos = _photos(4)
    edits = [_edits(fixed, k) for k in range(4)]
    alone, alone_edit = _run(fixed, [photos[2]], [edits[2]], [5])
    batch, batch_edit = _run(fixed, photos, edits, [1, 2, 5, 3])
    assert torch.equal(alone.wplus[0], batch.wplus[2])
    assert torch.equal(alone.detail[0], batch.detail[2])
    assert torch.equal(alone.reconstruction[0], batch.reconstruction[2])
    assert torch.equal(alone_edit[0], batch_edit[2])
    assert alone[0].to_bytes() == batch[2].to_bytes()  # the stored latent, byte for byte
    # each sample got its own edit: neighbours differ
    assert not torch.equal(batch_edit[1], batch_edit[2])


def test_a_seed_list_gives_a_sample_its_own_noise_at_any_position(fixed: Inverter) -> None:
    photos = _photos(2)
    listed, _ = _run(fixed, photos, _edits(fixed, 0), [9, 9])
    listed_swapped, _ = _run(fixed, photos[::-1], _edits(fixed, 0), [9, 9])
    assert torch.equal(listed.reconstruction[0], listed_swapped.reconstruction[1])


def test_edit_requests_must_match_the_samples(fixed: Inverter) -> None:
    inv = fixed.invert(_photos(2))
    with pytest.raises(EditError, match="2 latents"):
        fixed.edit(inv, [_edits(fixed, 0)])


def test_the_same_latent_always_has_the_same_bytes(fixed: Inverter) -> None:
    inv = fixed.invert(_photos(1))
    blobs = {inv.to_bytes() for _ in range(20)}  # safetensors' header order used to vary
    assert len(blobs) == 1
    tensors, metadata = read_latent(blobs.pop())
    assert torch.equal(tensors["wplus"], inv.wplus) and metadata["model_version"] == fixed.version
