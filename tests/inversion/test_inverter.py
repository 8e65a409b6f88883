"""Inverter: invert -> edit with the random tiny bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.errors import LatentFormatError, StrengthOutOfRange, UnknownEdit
from inversion.inverter import Inversion, Inverter
from inversion.latent import LATENT_FORMAT, write_latent


@pytest.fixture(scope="module")
def inverter(random_bundle_dir: Path) -> Inverter:
    return Inverter.from_path(random_bundle_dir, device="cpu")


def _photos(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    sizes = [(80, 60), (50, 90), (64, 64)]
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        for (w, h) in sizes[:n]
    ]


@pytest.fixture(scope="module")
def inversion(inverter: Inverter) -> Inversion:
    return inverter.invert(_photos(2))


def test_shapes(inverter: Inverter, inversion: Inversion) -> None:
    b = inverter.bundle
    assert inversion.wplus.shape == (2, b.n_latent, b.generator_config.style_dim)
    assert inversion.detail is not None and inversion.detail.shape[:2] == (
        2,
        b.encoder_config.detail_channels,
    )
    size = b.generator_config.size
    assert inversion.reconstruction.shape == (2, 3, size, size)
    assert inversion.bundle_version == b.version
    pils = inverter.to_pil(inversion.reconstruction)
    assert [p.size for p in pils] == [(size, size)] * 2 and pils[0].mode == "RGB"


def test_latent_avg_is_added(inverter: Inverter, inversion: Inversion) -> None:
    x = inverter.preprocess(_photos(2))
    with torch.inference_mode():
        offsets = inverter.encoder(x).wplus
    torch.testing.assert_close(inversion.wplus, offsets + inverter.latent_avg)


def test_zero_strength_edits_reproduce_the_reconstruction(
    inverter: Inverter, inversion: Inversion
) -> None:
    assert torch.equal(inverter.edit(inversion, {}), inversion.reconstruction)
    zeros = {name: 0.0 for name in inverter.catalog.names}
    assert torch.equal(inverter.edit(inversion, zeros), inversion.reconstruction)
    edited = inverter.edit(inversion, {inverter.catalog.names[0]: 2.0})
    assert edited.shape == inversion.reconstruction.shape
    assert not torch.allclose(edited, inversion.reconstruction)


def test_fuser_residual_is_used(inverter: Inverter, inversion: Inversion) -> None:
    # without the Fuser the detail residual is gone: rendering differs even at strength 0
    plain = inverter.edit(inversion, {}, use_fuser=False)
    assert not torch.allclose(plain, inversion.reconstruction)
    with torch.inference_mode():
        assert torch.equal(plain, inverter.generator.synthesis(inversion.wplus))
    # with it, the edit direction reaches the Fuser: same W+ edit, different residual
    name = inverter.catalog.names[0]
    with_fuser = inverter.edit(inversion, {name: 2.0})
    without = inverter.edit(inversion, {name: 2.0}, use_fuser=False)
    assert not torch.allclose(with_fuser, without)


def test_deterministic_and_batch_independent(inverter: Inverter, inversion: Inversion) -> None:
    photos = _photos(2)
    again = inverter.invert(photos)
    assert torch.equal(again.wplus, inversion.wplus)
    assert torch.equal(again.reconstruction, inversion.reconstruction)
    singles = Inversion.cat([inverter.invert([p]) for p in photos])
    torch.testing.assert_close(singles.wplus, inversion.wplus, atol=1e-5, rtol=0)
    torch.testing.assert_close(singles.reconstruction, inversion.reconstruction, atol=1e-5, rtol=0)
    request = {inverter.catalog.names[1]: -1.5}
    both = inverter.edit(inversion, request)
    one_by_one = inverter.edit(inversion, request, batch_size=1)
    torch.testing.assert_close(one_by_one, both, atol=1e-5, rtol=0)


def test_seeded_random_noise(random_bundle_dir: Path) -> None:
    inv = Inverter.from_path(random_bundle_dir, device="cpu", noise="random")
    for name, p in inv.generator.named_parameters():  # untrained: noise weights are 0
        if name.endswith("noise.weight"):
            p.data.fill_(0.3)
    photos = _photos(2)
    a = inv.invert(photos, seed=5)
    b = inv.invert(photos, seed=5, batch_size=1)
    c = inv.invert(photos, seed=6)
    torch.testing.assert_close(a.reconstruction, b.reconstruction, atol=1e-5, rtol=0)
    assert not torch.allclose(a.reconstruction, c.reconstruction)
    assert torch.equal(inv.edit(a, {}, seed=5), a.reconstruction)


def test_progress_and_tensor_input(inverter: Inverter) -> None:
    events: list[tuple[str, float]] = []
    x = torch.rand(3, 3, 40, 40) * 2 - 1
    result = inverter.invert(x, batch_size=2, progress=lambda s, f: events.append((s, f)))
    assert len(result) == 3
    assert ("invert", 1.0) in events and [f for s, f in events if s == "invert"] == [0.5, 1.0]
    inverter.edit(result, {}, batch_size=2, progress=lambda s, f: events.append((s, f)))
    assert events[-1] == ("edit", 1.0)


def test_invalid_requests(inverter: Inverter, inversion: Inversion) -> None:
    with pytest.raises(UnknownEdit):
        inverter.edit(inversion, {"no_such_edit": 1.0})
    spec = next(iter(inverter.catalog))
    with pytest.raises(StrengthOutOfRange):
        inverter.edit(inversion, {spec.name: spec.max_strength + 1})


def test_latents_round_trip(inverter: Inverter, inversion: Inversion, tmp_path: Path) -> None:
    inversion[1].save(tmp_path / "lat.safetensors")
    back = Inversion.load(tmp_path / "lat.safetensors")
    assert torch.equal(back.wplus, inversion.wplus[1:2])
    assert torch.equal(back.detail, inversion.detail[1:2])
    assert back.bundle_version == inversion.bundle_version
    assert back.reconstruction is None  # re-rendered from the codes, never stored
    assert Inversion.from_bytes(inversion.to_bytes()).wplus.shape == inversion.wplus.shape
    # a batch of one renders like the batch of two up to float rounding
    torch.testing.assert_close(
        inverter.edit(back, {}), inversion.reconstruction[1:2], atol=1e-5, rtol=0
    )


def test_latent_files_are_checked(inversion: Inversion) -> None:
    data = inversion.to_bytes()
    for bad, message in (
        (b"", "no safetensors header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(32), "no safetensors header"),
        (data[: len(data) // 2], "unreadable safetensors data"),
        (write_latent(torch.zeros(2, 8), None, "v"), "wplus must be"),
        (write_latent(torch.zeros(1, 8, 64), torch.zeros(2, 4, 4, 4), "v"), "detail must be"),
        (write_latent(torch.full((1, 8, 64), float("nan")), None, "v"), "finite"),
    ):
        with pytest.raises(LatentFormatError, match=message):
            Inversion.from_bytes(bad)
    # metadata that contradicts the tensors
    from safetensors.torch import save

    lying = save(
        {"wplus": torch.zeros(1, 8, 64)},
        metadata={"format": LATENT_FORMAT, "wplus_shape": "2,8,64"},
    )
    with pytest.raises(LatentFormatError, match="metadata says 2,8,64"):
        Inversion.from_bytes(lying)
    # the platform's first latents (no shape metadata) still read
    legacy = save(
        {"wplus": inversion.wplus[:1].contiguous()},
        metadata={"format": LATENT_FORMAT, "model_version": "abc"},
    )
    assert Inversion.from_bytes(legacy).bundle_version == "abc"
