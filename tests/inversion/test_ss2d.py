"""SS2D / VSSBlock: shapes, Mamba's parameter init, that all four directions matter."""

from __future__ import annotations

import math

import torch

from inversion.modules.ss2d import SS2D, VSSBlock


def test_shapes_channels_last_and_params():
    m = SS2D(16, d_state=4, expand=2, dt_rank=3)
    x = torch.randn(2, 5, 7, 16)
    assert m(x).shape == (2, 5, 7, 16)
    assert m.d_inner == 32 and m.dt_rank == 3
    assert m.x_proj_weight.shape == (4, 3 + 8, 32)
    assert m.A_logs.shape == (4 * 32, 4) and m.Ds.shape == (128,)
    assert SS2D(40).dt_rank == math.ceil(40 / 16)


def test_dt_and_A_init_follow_mamba():
    m = SS2D(16, d_state=4)
    dt = torch.nn.functional.softplus(m.dt_projs_bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    torch.testing.assert_close(torch.exp(m.A_logs[0]), torch.arange(1.0, 5.0))


def test_every_direction_sees_every_token():
    """Output at the first token depends on the last token (only reversed scans reach it)."""
    torch.manual_seed(0)
    m = SS2D(8, d_state=4)
    x = torch.randn(1, 4, 4, 8, requires_grad=True)
    m(x)[0, 0, 0].sum().backward()
    assert x.grad[0, -1, -1].abs().sum() > 0
    assert x.grad[0, -1, 0].abs().sum() > 0


def test_vss_block_residual_mlp_and_determinism():
    torch.manual_seed(0)
    blk = VSSBlock(8, d_state=4, expand=1, mlp_ratio=2.0)
    assert blk.mlp is not None
    x = torch.randn(2, 3, 3, 8)
    y1, y2 = blk(x), blk(x)
    assert y1.shape == x.shape
    torch.testing.assert_close(y1, y2)
    # residual: zeroing the SS2D output projection and MLP leaves x unchanged
    torch.nn.init.zeros_(blk.ss2d.out_proj.weight)
    torch.nn.init.zeros_(blk.mlp[2].weight)
    torch.nn.init.zeros_(blk.mlp[2].bias)
    torch.testing.assert_close(blk(x), x)
    assert VSSBlock(8).mlp is None
