"""pSp's GradualStyleEncoder (Richardson et al., "Encoding in Style", CVPR 2021).

Rebuilt as its authors built it, for the benchmark: the IR-SE50 body (stem + 4 stages of
3/4/14/3 units at 64/128/256/512 channels), FPN lateral layers, and one
GradualStyleBlock per W+ code (strided 3x3 convs down to 1x1, then an EqualLinear):
coarse codes from the 16^2 map, middle from 32^2, fine from 64^2. At 256 px and 18
codes this is 267.1 M parameters, most of them in the 18 blocks' conv stacks.
Same output contract as :class:`inversion.modules.encoder.MambaStyleEncoder`: W+
offsets relative to latent_avg, and no detail map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.config import ModelConfig
from inversion.errors import ConfigError
from inversion.modules.encoder import EncoderOutput
from inversion.modules.irse import input_layer, irse_stages

__all__ = ["EqualLinear", "GradualStyleBlock", "GradualStyleEncoder", "PSPConfig"]


@dataclass
class PSPConfig(ModelConfig):
    """``coarse``/``middle``: code indices where the middle and fine groups start (3, 7)."""

    input_size: int = 256
    n_latent: int = 18
    style_dim: int = 512
    body_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    body_units: list[int] = field(default_factory=lambda: [3, 4, 14, 3])
    coarse: int = 3
    middle: int = 7

    def validate(self) -> None:
        self.body_channels = list(self.body_channels)
        self.body_units = list(self.body_units)
        if len(self.body_channels) != 4 or len(self.body_units) != 4:
            raise ConfigError("body_channels and body_units need 4 stages")
        if self.body_channels[-1] != self.style_dim:
            raise ConfigError("pSp's last stage width must equal style_dim")
        if not 0 < self.coarse < self.middle < self.n_latent:
            raise ConfigError("pSp needs 0 < coarse < middle < n_latent")

    @classmethod
    def full(cls) -> PSPConfig:
        """The authors' FFHQ encoder: IR-SE50, 256 px, 18 codes of 512."""
        return cls()

    @classmethod
    def tiny(cls) -> PSPConfig:
        """64 px, 8 codes of 64, one unit per stage; for fast tests."""
        return cls(
            input_size=64,
            n_latent=8,
            style_dim=64,
            body_channels=[8, 16, 32, 64],
            body_units=[1, 1, 1, 1],
            coarse=2,
            middle=4,
        )


class EqualLinear(nn.Module):
    """rosinality's equalised-learning-rate linear layer (no activation here)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = 1 / math.sqrt(in_dim) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class GradualStyleBlock(nn.Module):
    """log2(spatial) stride-2 3x3 convs + LeakyReLU down to 1x1, then EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        num_pools = int(math.log2(spatial))
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(num_pools - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).view(-1, self.out_c))


class GradualStyleEncoder(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> EncoderOutput(W+ offsets (B, n_latent, style_dim), None)."""

    def __init__(self, cfg: PSPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_layer = input_layer(cfg.body_channels[0])
        self.body = irse_stages(cfg.body_channels[0], cfg.body_channels, cfg.body_units)
        s = cfg.input_size
        spatial = {"coarse": s // 16, "middle": s // 8, "fine": s // 4}
        self.styles = nn.ModuleList()
        for i in range(cfg.n_latent):
            level = "coarse" if i < cfg.coarse else "middle" if i < cfg.middle else "fine"
            self.styles.append(GradualStyleBlock(cfg.style_dim, cfg.style_dim, spatial[level]))
        c1, c2 = cfg.body_channels[1], cfg.body_channels[2]
        self.latlayer1 = nn.Conv2d(c2, cfg.style_dim, 1)
        self.latlayer2 = nn.Conv2d(c1, cfg.style_dim, 1)

    @staticmethod
    def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, x: Tensor) -> EncoderOutput:
        cfg = self.cfg
        x = self.input_layer(x)
        x = self.body[0](x)
        c1 = self.body[1](x)  # input/4, 128 ch
        c2 = self.body[2](c1)  # input/8, 256 ch
        c3 = self.body[3](c2)  # input/16, 512 ch
        latents = [self.styles[j](c3) for j in range(cfg.coarse)]
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        latents += [self.styles[j](p2) for j in range(cfg.coarse, cfg.middle)]
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        latents += [self.styles[j](p1) for j in range(cfg.middle, cfg.n_latent)]
        return EncoderOutput(wplus=torch.stack(latents, dim=1), detail=None)
