"""MambaStyle encoder: photo -> W+ offsets (relative to latent_avg) + a detail map.

Structure (MambaStyle, arXiv 2505.15822): IR-SE body -> features at input/4, /8, /16
(64^2, 32^2, 16^2 for a 256 input) -> FPN top-down -> one VSS block per level ->
style heads -> W+ codes, split across levels as the authors do (64^2 -> codes 0-3,
32^2 -> 4-8, 16^2 -> the rest; proportionally for other ``n_latent``), and a 3x3 conv on
the refined finest level -> the detail feature map the Fuser consumes.

Why our dimensions are leaner than the authors'
-----------------------------------------------
The authors' encoder (2/2/5/2 IR-SE units at 64..512 channels, three 512-wide FPN maps,
VSS blocks with d_inner 1024 at 64^2) is 56.8 M parameters / 38 GMACs; on a 2-core CPU
the scan at 64^2 (4 directions x 1024 channels x 4096 steps x 16 states) alone costs
more than pSp's whole forward pass. Work in SS2D grows with width x tokens, so the
width is spent where tokens are few: the FPN/VSS width is 128 at 64^2, 256 at 32^2 and
512 at 16^2 (top-down merges go through a 1x1 projection), ``expand`` is 1, and the
body is 1/2/3/2 units at 32/64/128/256 channels. The heads pool each level to a 2x2
grid (keeping coarse layout, unlike a global average) before two linear layers. See
docs/benchmarks.md for the measured parameters, MACs and latency against pSp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.config import ModelConfig
from inversion.errors import ConfigError
from inversion.modules.irse import input_layer, irse_stages
from inversion.modules.ss2d import VSSBlock

__all__ = ["EncoderConfig", "EncoderOutput", "MambaStyleEncoder", "split_codes"]


@dataclass
class EncoderConfig(ModelConfig):
    """Hyper-parameters of :class:`MambaStyleEncoder` (JSON-serialisable fields only).

    ``body_channels``/``body_units``: four IR-SE stages, each halving the resolution;
    the last three give the levels input/4, /8, /16. ``fpn_channels``: FPN and VSS
    width per level, finest first. ``head_pool``: the style heads pool each level to a
    ``head_pool`` x ``head_pool`` grid.
    """

    input_size: int = 256
    n_latent: int = 18
    style_dim: int = 512
    stem_channels: int = 32
    body_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    body_units: list[int] = field(default_factory=lambda: [1, 2, 3, 2])
    fpn_channels: list[int] = field(default_factory=lambda: [128, 256, 512])
    d_state: int = 16
    expand: float = 1.0
    dt_rank: int | None = None
    mlp_ratio: float = 0.0
    head_pool: int = 2
    detail_channels: int = 64

    def validate(self) -> None:
        self.body_channels = list(self.body_channels)
        self.body_units = list(self.body_units)
        self.fpn_channels = list(self.fpn_channels)
        if len(self.body_channels) != 4 or len(self.body_units) != 4:
            raise ConfigError("body_channels and body_units need 4 stages")
        if len(self.fpn_channels) != 3:
            raise ConfigError("fpn_channels needs 3 levels (input/4, /8, /16)")
        if self.input_size % 16 or self.input_size < 32:
            raise ConfigError(
                f"input_size must be a multiple of 16 and >= 32, got {self.input_size}"
            )
        if self.n_latent < 3:
            raise ConfigError("n_latent must be >= 3 (one code per level at least)")

    @classmethod
    def full(cls) -> EncoderConfig:
        """256 px input, 18 codes of 512 (FFHQ 1024 generator), lean widths (see module doc)."""
        return cls()

    @classmethod
    def tiny(cls) -> EncoderConfig:
        """64 px input, 8 codes of 64 (the 32 px tiny generator); for fast tests."""
        return cls(
            input_size=64,
            n_latent=8,
            style_dim=64,
            stem_channels=8,
            body_channels=[8, 16, 32, 32],
            body_units=[1, 1, 1, 1],
            fpn_channels=[16, 32, 32],
            d_state=4,
            head_pool=1,
            detail_channels=16,
        )


class EncoderOutput(NamedTuple):
    """W+ offsets (B, n_latent, style_dim) -- add latent_avg -- and the detail map."""

    wplus: Tensor
    detail: Tensor | None


def split_codes(n_latent: int) -> tuple[int, int, int]:
    """Codes per level (finest, middle, coarsest map): 4/5/9 of 18, proportional otherwise."""
    fine = max(1, round(n_latent * 4 / 18))
    mid = max(1, round(n_latent * 5 / 18))
    return fine, mid, n_latent - fine - mid


class StyleHead(nn.Module):
    """Pool a level to a small grid -> Linear -> LeakyReLU -> Linear to k codes."""

    def __init__(self, channels: int, pool: int, n_codes: int, style_dim: int) -> None:
        super().__init__()
        self.n_codes, self.style_dim = n_codes, style_dim
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc1 = nn.Linear(channels * pool * pool, style_dim)
        self.fc2 = nn.Linear(style_dim, n_codes * style_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.fc1(self.pool(x).flatten(1)), 0.2)
        return self.fc2(h).view(-1, self.n_codes, self.style_dim)


class MambaStyleEncoder(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> :class:`EncoderOutput` (W+ offsets, detail map)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_layer = input_layer(cfg.stem_channels)
        self.body = irse_stages(cfg.stem_channels, cfg.body_channels, cfg.body_units)
        fpn = cfg.fpn_channels
        self.lateral = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 1)
            for c_in, c_out in zip(cfg.body_channels[1:], fpn, strict=True)
        )
        # top-down projections: coarser width -> finer width (1x1), identity when equal
        self.top_down = nn.ModuleList(
            nn.Conv2d(fpn[i + 1], fpn[i], 1) if fpn[i + 1] != fpn[i] else nn.Identity()
            for i in range(2)
        )
        self.vss = nn.ModuleList(
            VSSBlock(
                c,
                d_state=cfg.d_state,
                expand=cfg.expand,
                dt_rank=cfg.dt_rank,
                mlp_ratio=cfg.mlp_ratio,
            )
            for c in fpn
        )
        self.codes = split_codes(cfg.n_latent)
        self.heads = nn.ModuleList(
            StyleHead(c, cfg.head_pool, k, cfg.style_dim)
            for c, k in zip(fpn, self.codes, strict=True)
        )
        self.detail = nn.Conv2d(fpn[0], cfg.detail_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> EncoderOutput:
        s = self.cfg.input_size
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != (s, s):
            raise ValueError(f"expected (B, 3, {s}, {s}) images, got {tuple(x.shape)}")
        x = self.input_layer(x)
        feats = []
        for i, stage in enumerate(self.body):
            x = stage(x)
            if i >= 1:
                feats.append(x)  # input/4, /8, /16
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        p = [lat[0], lat[1], lat[2]]
        for i in (1, 0):  # top-down
            up = F.interpolate(
                self.top_down[i](p[i + 1]),
                size=lat[i].shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
            p[i] = lat[i] + up
        refined = [
            blk(level.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # VSS is channels-last
            for blk, level in zip(self.vss, p, strict=True)
        ]
        wplus = torch.cat([head(r) for head, r in zip(self.heads, refined, strict=True)], dim=1)
        return EncoderOutput(wplus=wplus, detail=self.detail(refined[0]))
