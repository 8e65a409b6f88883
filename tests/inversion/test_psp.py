"""pSp GradualStyleEncoder: the authors' size and the shared forward contract."""

from __future__ import annotations

import torch

from inversion.baselines.psp import GradualStyleEncoder, PSPConfig


def test_full_psp_parameter_count_matches_authors():
    m = GradualStyleEncoder(PSPConfig.full())
    n = sum(p.numel() for p in m.parameters())
    print(f"pSp GradualStyleEncoder: {n / 1e6:.2f} M parameters")
    assert abs(n - 267.1e6) / 267.1e6 < 0.01
    assert len(m.styles) == 18
    # coarse blocks pool 16^2 (4 convs), middle 32^2 (5), fine 64^2 (6)
    n_convs = [sum(isinstance(x, torch.nn.Conv2d) for x in s.convs) for s in m.styles]
    assert n_convs == [4] * 3 + [5] * 4 + [6] * 11


def test_tiny_psp_forward_backward_and_determinism():
    torch.manual_seed(0)
    cfg = PSPConfig.tiny()
    m = GradualStyleEncoder(cfg)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = m(x)
    assert out.wplus.shape == (2, cfg.n_latent, cfg.style_dim)
    assert out.detail is None
    out.wplus.sum().backward()
    assert m.input_layer[0].weight.grad is not None
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x).wplus, m(x).wplus)
