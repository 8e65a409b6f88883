"""StyleGAN2 generator: reference conformance, checkpoint format, feature hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inversion.errors import CheckpointError, ConfigError, UnknownConfigKey
from inversion.modules.stylegan2 import (
    Generator,
    GeneratorConfig,
    infer_config,
    load_rosinality_checkpoint,
)
from inversion.ops.upfirdn import upfirdn2d

TOL = 1e-4


@pytest.fixture(scope="module")
def vector(formats_dir: Path) -> dict:
    return torch.load(formats_dir / "stylegan2_vector8.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ref_ckpt(vector: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vector's generator written as a rosinality checkpoint file (fp32)."""
    path = tmp_path_factory.mktemp("ckpt") / "g8.pt"
    g_ema = {k: v.float() for k, v in vector["g_ema_fp16"].items()}
    torch.save({"g_ema": g_ema, "latent_avg": vector["latent_avg"], "args": {"x": 1}}, path)
    return path


@pytest.fixture(scope="module")
def ref_generator(ref_ckpt: Path) -> tuple[Generator, torch.Tensor]:
    return load_rosinality_checkpoint(ref_ckpt)


def test_config_inferred_from_state_dict(vector: dict, ref_generator) -> None:
    g, latent_avg = ref_generator
    cfg = vector["config"]
    assert g.size == cfg["size"] and g.style_dim == cfg["style_dim"]
    assert g.cfg.n_mlp == cfg["n_mlp"] and g.cfg.channel_multiplier == cfg["channel_multiplier"]
    assert g.n_latent == cfg["n_latent"]
    assert torch.equal(latent_avg, vector["latent_avg"])


@torch.no_grad()
def test_conformance_vector(vector: dict, ref_generator) -> None:
    g, latent_avg = ref_generator
    z, z2 = vector["z"], vector["z2"]

    w = g.get_latent(z)
    assert (w - vector["w"]).abs().max() <= TOL

    img, _ = g([z], randomize_noise=False)
    assert (img - vector["img_z"]).abs().max() <= TOL

    img, _ = g([vector["wplus"]], input_is_latent=True, randomize_noise=False)
    assert (img - vector["img_wplus"]).abs().max() <= TOL

    img, _ = g([z], truncation=0.7, truncation_latent=latent_avg, randomize_noise=False)
    assert (img - vector["img_trunc"]).abs().max() <= TOL

    img, latent = g([z, z2], inject_index=2, randomize_noise=False, return_latents=True)
    assert (img - vector["img_mix"]).abs().max() <= TOL
    assert torch.equal(latent[:, 1], latent[:, 0]) and not torch.equal(latent[:, 1], latent[:, 2])

    # synthesis() is the same network: W+ in, stored noise.
    img = g.synthesis(vector["wplus"], noise="const")
    assert (img - vector["img_wplus"]).abs().max() <= TOL


@pytest.mark.parametrize(
    ("name", "cfg"),
    [
        ("size1024_style512_mlp8_cm2", GeneratorConfig.ffhq1024()),
        ("size256_style512_mlp8_cm2", GeneratorConfig.ffhq256()),
    ],
)
def test_state_dict_keys_and_shapes(formats_dir: Path, name: str, cfg: GeneratorConfig) -> None:
    expected = json.loads((formats_dir / "stylegan2_keys.json").read_text())[name]
    with torch.device("meta"):
        g = Generator(cfg)
    got = [(k, list(v.shape)) for k, v in g.state_dict().items()]
    assert got == list(expected["state_dict"].items())
    assert g.n_latent == expected["n_latent"]
    # and the shapes alone determine the config again
    shapes = {k: torch.empty(v, device="meta") for k, v in expected["state_dict"].items()}
    assert infer_config(shapes) == cfg


def test_upfirdn2d_matches_explicit_upsample() -> None:
    # 2x upsampling with a box kernel of ones(2, 2) is nearest-neighbour upsampling.
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = upfirdn2d(x, torch.ones(2, 2), up=2, pad=(1, 0))
    assert torch.equal(out, x.repeat_interleave(2, 2).repeat_interleave(2, 3))
    down = upfirdn2d(x, torch.ones(1, 1), down=2)
    assert torch.equal(down, x[:, :, ::2, ::2])


@pytest.fixture(scope="module")
def tiny() -> Generator:
    torch.manual_seed(0)
    return Generator(GeneratorConfig.tiny()).eval()


@torch.no_grad()
def test_feature_hook(tiny: Generator) -> None:
    wplus = torch.randn(2, tiny.n_latent, tiny.style_dim)
    plain = tiny.synthesis(wplus)
    assert plain.shape == (2, 3, 32, 32)
    for res in tiny.resolutions:
        zero = torch.zeros(2, tiny.channels_at(res), res, res)
        same, feats = tiny.synthesis(wplus, feature_residual={res: zero}, return_features=res)
        assert torch.equal(same, plain)
        assert feats.shape == (2, tiny.channels_at(res), res, res)

    # a non-zero residual changes the image, and is visible in the returned features
    res = 16
    _, base = tiny.synthesis(wplus, return_features=res)
    bump = torch.randn(1, tiny.channels_at(res), res, res)
    img, feats = tiny.synthesis(wplus, feature_residual={res: bump}, return_features=res)
    assert not torch.allclose(img, plain)
    torch.testing.assert_close(feats, base + bump)
    # features before the injection point are untouched
    _, early = tiny.synthesis(wplus, feature_residual={res: bump}, return_features=8)
    torch.testing.assert_close(early, tiny.synthesis(wplus, return_features=8)[1])

    with pytest.raises(ValueError, match="feature_residual"):
        tiny.synthesis(wplus, feature_residual={16: torch.zeros(2, 7, 16, 16)})
    with pytest.raises(ValueError, match="no generator block"):
        tiny.synthesis(wplus, feature_residual={12: torch.zeros(2, 7, 12, 12)})


@torch.no_grad()
def test_determinism_and_noise(tiny: Generator) -> None:
    wplus = torch.randn(2, tiny.n_latent, tiny.style_dim)
    assert torch.equal(tiny.synthesis(wplus), tiny.synthesis(wplus))
    a = tiny.synthesis(wplus, noise="random", generator=torch.Generator().manual_seed(3))
    b = tiny.synthesis(wplus, noise="random", generator=torch.Generator().manual_seed(3))
    c = tiny.synthesis(wplus, noise="random", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    # noise weights start at zero in a fresh model; make them matter, then compare
    for name, p in tiny.named_parameters():
        if name.endswith("noise.weight"):
            p.fill_(0.5)
    try:
        c = tiny.synthesis(wplus, noise="random", generator=torch.Generator().manual_seed(4))
        a = tiny.synthesis(wplus, noise="random", generator=torch.Generator().manual_seed(3))
        assert not torch.allclose(a, c)
    finally:
        for name, p in tiny.named_parameters():
            if name.endswith("noise.weight"):
                p.zero_()
    # a W code is broadcast to all layers
    w = torch.randn(1, tiny.style_dim)
    assert torch.equal(tiny.synthesis(w), tiny.synthesis(w[:, None].repeat(1, tiny.n_latent, 1)))


def test_mean_latent_and_channels(tiny: Generator) -> None:
    gen = torch.Generator().manual_seed(0)
    m = tiny.mean_latent(64, generator=gen)
    assert m.shape == (1, tiny.style_dim)
    assert tiny.channels_at(32) == 32 and tiny.n_latent == 8
    with pytest.raises(ValueError):
        tiny.channels_at(12)


def test_config_round_trip_and_rejects_unknown_keys() -> None:
    cfg = GeneratorConfig.tiny()
    d = json.loads(json.dumps(cfg.to_dict()))
    assert GeneratorConfig.from_dict(d) == cfg
    with pytest.raises(UnknownConfigKey, match=r"unknown GeneratorConfig keys: \['bogus'\]"):
        GeneratorConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ConfigError, match="power of two"):
        GeneratorConfig(size=48)


def test_bad_checkpoints_raise_typed_errors(tmp_path: Path, vector: dict) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_rosinality_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_rosinality_checkpoint(junk)
    no_g = tmp_path / "no_g.pt"
    torch.save({"g": {}}, no_g)
    with pytest.raises(CheckpointError, match="g_ema"):
        load_rosinality_checkpoint(no_g)
    broken = tmp_path / "broken.pt"
    sd = {k: v.float() for k, v in vector["g_ema_fp16"].items()}
    del sd["to_rgbs.0.bias"]
    torch.save({"g_ema": sd}, broken)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_rosinality_checkpoint(broken)


def test_missing_latent_avg_is_estimated(tmp_path: Path, vector: dict) -> None:
    path = tmp_path / "nolat.pt"
    torch.save({"g_ema": {k: v.float() for k, v in vector["g_ema_fp16"].items()}}, path)
    g, a = load_rosinality_checkpoint(path, mean_latent_samples=256, seed=1)
    _, b = load_rosinality_checkpoint(path, mean_latent_samples=256, seed=1)
    assert a.shape == (512,) and torch.equal(a, b)
