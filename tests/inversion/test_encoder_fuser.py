"""MambaStyle encoder and Fuser: configs, shapes, code split, determinism, gradients."""

from __future__ import annotations

import json

import pytest
import torch

from inversion.modules.encoder import EncoderConfig, EncoderOutput, MambaStyleEncoder, split_codes
from inversion.modules.fuser import Fuser, FuserConfig


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("cls", [EncoderConfig, FuserConfig])
def test_config_round_trip_and_unknown_keys(cls):
    for cfg in (cls.full(), cls.tiny()):
        d = json.loads(json.dumps(cfg.to_dict()))
        assert cls.from_dict(d) == cfg
    with pytest.raises(ValueError, match="bogus"):
        cls.from_dict({"bogus": 1, "n_latent": 8})


def test_presets():
    full, tiny = EncoderConfig.full(), EncoderConfig.tiny()
    assert (full.input_size, full.n_latent, full.style_dim) == (256, 18, 512)
    assert (tiny.input_size, tiny.n_latent, tiny.style_dim) == (64, 8, 64)
    fus = FuserConfig.full()
    assert (fus.resolution, fus.out_channels, fus.detail_channels) == (
        64,
        512,
        full.detail_channels,
    )
    assert FuserConfig.tiny().detail_channels == tiny.detail_channels


def test_split_codes_matches_authors_and_generalises():
    assert split_codes(18) == (4, 5, 9)  # 64^2 -> 0-3, 32^2 -> 4-8, 16^2 -> 9-17
    for n in (3, 8, 14, 16):
        parts = split_codes(n)
        assert sum(parts) == n and min(parts) >= 1


def test_tiny_encoder_forward_backward_and_determinism():
    cfg = EncoderConfig.tiny()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.manual_seed(0)
    enc = MambaStyleEncoder(cfg).eval()
    torch.manual_seed(0)
    twin = MambaStyleEncoder(cfg).eval()
    with torch.no_grad():
        a, b, c = enc(x), enc(x), twin(x)
    torch.testing.assert_close(a.wplus, b.wplus)  # deterministic
    torch.testing.assert_close(a.wplus, c.wplus)  # same seed, same weights
    torch.testing.assert_close(a.detail, c.detail)

    enc.train()
    out = enc(x)
    assert isinstance(out, EncoderOutput)
    assert out.wplus.shape == (2, 8, 64)
    assert out.detail.shape == (2, cfg.detail_channels, 16, 16)  # input/4
    (out.wplus.square().mean() + out.detail.square().mean()).backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not missing


def test_codes_come_from_their_level():
    """Codes 0..k-1 are produced by the finest level's head only."""
    torch.manual_seed(0)
    enc = MambaStyleEncoder(EncoderConfig.tiny()).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    fine, mid, coarse = enc.codes
    with torch.no_grad():
        before = enc(x).wplus
        enc.heads[0].fc2.bias.add_(1.0)
        after = enc(x).wplus
    assert torch.allclose(after[:, :fine], before[:, :fine] + 1.0, atol=1e-5)
    torch.testing.assert_close(after[:, fine:], before[:, fine:])


def test_encoder_rejects_wrong_size():
    enc = MambaStyleEncoder(EncoderConfig.tiny())
    with pytest.raises(ValueError, match="64"):
        enc(torch.zeros(1, 3, 32, 32))


def test_full_configs_construct_and_are_lean():
    enc = MambaStyleEncoder(EncoderConfig.full())
    fus = Fuser(FuserConfig.full())
    total = n_params(enc) + n_params(fus)
    print(f"MambaStyle encoder {n_params(enc) / 1e6:.2f} M + Fuser {n_params(fus) / 1e6:.2f} M")
    assert total <= 267.1e6 / 3  # target: <= 1/3 of pSp


def test_full_forward_batch1_shapes():
    torch.manual_seed(0)
    enc = MambaStyleEncoder(EncoderConfig.full()).eval()
    fus = Fuser(FuserConfig.full()).eval()
    with torch.inference_mode():
        out = enc(torch.rand(1, 3, 256, 256) * 2 - 1)
        r = fus(torch.zeros_like(out.wplus), out.detail)
    assert out.wplus.shape == (1, 18, 512)
    assert out.detail.shape == (1, 64, 64, 64)
    assert r.shape == (1, 512, 64, 64)


def test_tiny_fuser_shapes_zero_direction_and_gradients():
    torch.manual_seed(0)
    cfg = FuserConfig.tiny()
    fus = Fuser(cfg)
    detail = torch.randn(2, cfg.detail_channels, 16, 16)
    d0 = torch.zeros(2, cfg.n_latent, cfg.style_dim)
    r1, r2 = fus(d0, detail), fus(d0.clone(), detail)
    assert r1.shape == (2, cfg.out_channels, cfg.resolution, cfg.resolution)
    assert torch.equal(r1, r2)  # d = 0 -> the very same residual every call
    # near-zero output init: an untrained Fuser barely moves the generator
    assert r1.abs().max() < 0.05
    # a detail map at another size is resized, and the direction matters
    d = torch.randn_like(d0)
    r3 = fus(d, torch.randn(2, cfg.detail_channels, 8, 8))
    assert r3.shape == r1.shape
    d.requires_grad_(True)
    fus(d, detail).square().sum().backward()
    assert d.grad.abs().sum() > 0
    assert fus.tokens.weight.grad is not None and fus.out.weight.grad is not None
    with pytest.raises(ValueError):
        fus(torch.zeros(2, cfg.n_latent + 1, cfg.style_dim), detail)
