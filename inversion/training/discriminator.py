"""StyleGAN2 discriminator (residual, blur-downsampling, minibatch stddev).

Follows rosinality's ``Discriminator`` (equalised learning rate, FIR downsampling,
residual blocks scaled by 1/sqrt(2), minibatch standard deviation, two linear layers),
with a ``channels`` table so that small generators get a matching small critic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.config import ModelConfig
from inversion.errors import ConfigError
from inversion.modules.stylegan2 import Blur, EqualLinear
from inversion.ops.fused_act import FusedLeakyReLU

__all__ = ["DiscriminatorConfig", "Discriminator"]


@dataclass
class DiscriminatorConfig(ModelConfig):
    size: int = 256
    channels: dict[int, int] = field(default_factory=dict)
    stddev_group: int = 4
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)

    def validate(self) -> None:
        self.channels = {int(k): int(v) for k, v in self.channels.items()}
        self.blur_kernel = tuple(int(k) for k in self.blur_kernel)
        if self.size < 8 or self.size & (self.size - 1):
            raise ConfigError(f"discriminator size must be a power of two >= 8, got {self.size}")
        log = int(math.log2(self.size))
        missing = [2**i for i in range(2, log + 1) if 2**i not in self.channels]
        if missing:
            raise ConfigError(f"discriminator channels lack resolutions {missing}")

    @classmethod
    def matching(cls, gen_channels: Mapping[int, int], size: int) -> DiscriminatorConfig:
        """The same channel table as the generator (the usual StyleGAN2 symmetry)."""
        return cls(size=size, channels={int(k): int(v) for k, v in gen_channels.items()})


class EqualConv2d(nn.Module):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1 / math.sqrt(in_ch * kernel**2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(
            x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding
        )


class ConvLayer(nn.Sequential):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        downsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel // 2
        layers.append(
            EqualConv2d(
                in_ch, out_ch, kernel, stride=stride, padding=padding, bias=bias and not activate
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[int]) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_ch, out_ch, 1, downsample=True, activate=False, bias=False, blur_kernel=blur_kernel
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return (out + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        log = int(math.log2(cfg.size))
        convs: list[nn.Module] = [ConvLayer(3, ch[cfg.size], 1)]
        in_ch = ch[cfg.size]
        for i in range(log, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.stddev_group = cfg.stddev_group
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"),
            EqualLinear(ch[4], 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs(x)
        batch, channel, height, width = out.shape
        group = min(batch, self.stddev_group)
        while batch % group:
            group -= 1
        stddev = out.view(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        out = torch.cat([out, stddev], 1)
        out = self.final_conv(out)
        out = out.view(batch, -1)
        return self.final_linear(out)
