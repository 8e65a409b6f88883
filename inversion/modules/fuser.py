"""Fuser: edit direction + detail map -> a residual for the generator's features.

MambaStyle's Fuser turns ``d = w_edit - w`` (n_latent x style_dim) into a feature map
with SSM blocks, fuses it with the encoder's detail map and adds the result to the
generator's features at one resolution (64^2 for 256/1024 px), so a photo's details
survive an edit. ``d = 0`` is plain reconstruction: the module is deterministic (no
noise, no dropout), so the residual for ``d = 0`` is identical on every call.

Why it is leaner than the authors'
----------------------------------
The authors' Fuser runs two 512-channel modulated 3x3 convs and an approximator at
64^2 (~51 GMACs, more than the whole encoder). Here the direction is handled where it
is small: the codes are a sequence of ``n_latent`` tokens refined by a VSS block (a
1 x n_latent map: the four scan directions become forward and backward passes), spread
onto a ``seed_size``^2 map by a learnt per-code spatial basis, refined by a VSS block at
that size, upsampled, and fused with the detail map by two narrow 3x3 convs whose
features are modulated (FiLM) by the pooled direction; a 1x1 conv widens to the
generator's ``out_channels``. That output conv starts near zero, so an untrained Fuser
adds almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.config import ModelConfig
from inversion.modules.ss2d import VSSBlock

__all__ = ["Fuser", "FuserConfig"]


@dataclass
class FuserConfig(ModelConfig):
    """Hyper-parameters of :class:`Fuser` (JSON-serialisable fields only).

    ``out_channels`` and ``resolution`` must match the generator block the residual is
    added to; ``detail_channels`` must match the encoder's.
    """

    n_latent: int = 18
    style_dim: int = 512
    detail_channels: int = 64
    out_channels: int = 512
    resolution: int = 64
    token_dim: int = 64
    seed_size: int = 16
    hidden_channels: int = 64
    d_state: int = 16
    expand: float = 1.0
    out_init_scale: float = 1e-3

    @classmethod
    def full(cls) -> FuserConfig:
        """Residual for the 64^2 block of a 512-channel (FFHQ) generator."""
        return cls()

    @classmethod
    def tiny(cls) -> FuserConfig:
        """Residual for the 16^2 block (32 channels) of the 32 px tiny generator."""
        return cls(
            n_latent=8,
            style_dim=64,
            detail_channels=16,
            out_channels=32,
            resolution=16,
            token_dim=16,
            seed_size=4,
            hidden_channels=16,
            d_state=4,
        )


class Fuser(nn.Module):
    """forward(d (B, n_latent, style_dim), detail (B, detail_channels, h, w))
    -> residual (B, out_channels, resolution, resolution)."""

    def __init__(self, cfg: FuserConfig) -> None:
        super().__init__()
        self.cfg = cfg
        t, hdn = cfg.token_dim, cfg.hidden_channels
        self.tokens = nn.Linear(cfg.style_dim, t)
        self.code_ssm = VSSBlock(t, d_state=cfg.d_state, expand=cfg.expand)
        # per-code spatial basis: code k paints basis[k] onto the seed map
        self.basis = nn.Parameter(
            torch.randn(cfg.n_latent, cfg.seed_size, cfg.seed_size) / cfg.n_latent**0.5
        )
        self.seed_ssm = VSSBlock(t, d_state=cfg.d_state, expand=cfg.expand)
        self.fuse = nn.Conv2d(t + cfg.detail_channels, hdn, 3, 1, 1)
        self.film = nn.Linear(t, 2 * hdn)
        self.refine = nn.Conv2d(hdn, hdn, 3, 1, 1)
        self.out = nn.Conv2d(hdn, cfg.out_channels, 1)
        nn.init.uniform_(self.out.weight, -cfg.out_init_scale, cfg.out_init_scale)
        nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, d: Tensor, detail: Tensor) -> Tensor:
        cfg = self.cfg
        if d.dim() != 3 or d.shape[1:] != (cfg.n_latent, cfg.style_dim):
            raise ValueError(
                f"expected d of shape (B, {cfg.n_latent}, {cfg.style_dim}), got {tuple(d.shape)}"
            )
        if detail.dim() != 4 or detail.shape[1] != cfg.detail_channels:
            raise ValueError(
                f"expected detail (B, {cfg.detail_channels}, h, w), got {tuple(detail.shape)}"
            )
        tok = self.tokens(d)  # (B, K, t)
        tok = self.code_ssm(tok.unsqueeze(1)).squeeze(1)  # the codes as a 1 x K map
        seed = torch.einsum("bkc,khw->bhwc", tok, self.basis)  # channels-last seed map
        seed = self.seed_ssm(seed).permute(0, 3, 1, 2)
        r = cfg.resolution
        seed = F.interpolate(seed, size=(r, r), mode="bilinear", align_corners=False)
        if detail.shape[-2:] != (r, r):
            detail = F.interpolate(detail, size=(r, r), mode="bilinear", align_corners=False)
        h = self.fuse(torch.cat([seed, detail], dim=1))
        scale, shift = self.film(tok.mean(dim=1)).chunk(2, dim=-1)
        h = F.leaky_relu(h * (1 + scale[..., None, None]) + shift[..., None, None], 0.2)
        h = F.leaky_relu(self.refine(h), 0.2)
        return self.out(h)
