"""StyleGAN2 generator, state-dict compatible with rosinality's stylegan2-pytorch.

Inversion encoders (pSp, e4e, HyperStyle, MambaStyle) are all built on the public
rosinality checkpoints (e.g. FFHQ ``stylegan2-ffhq-config-f.pt``). The module tree,
parameter and buffer names here are exactly rosinality's, so ``ckpt["g_ema"]`` loads
with ``strict=True`` and no key conversion; the arithmetic follows the reference so that
outputs match it to float rounding (checked against a conformance vector in the tests).

What is added on top of the reference:

* :class:`GeneratorConfig`, a dataclass, and presets (``ffhq1024``, ``tiny``...);
* :meth:`Generator.synthesis` — W+ in, image out, with a *feature injection hook*
  (a residual added to the activation after the block at a given resolution, which is
  where the MambaStyle Fuser puts back image detail lost by the W+ code) and the option
  to return that activation (for feature-consistency losses);
* seeded random noise (``torch.Generator``) and :func:`load_rosinality_checkpoint`,
  which infers the configuration from the state dict's shapes.

Only the pieces the generator needs are here (no discriminator, no downsampling conv,
no CUDA kernels: ``inversion.ops`` has the plain-PyTorch upfirdn2d and fused leaky ReLU).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.config import ModelConfig
from inversion.errors import CheckpointError, ConfigError
from inversion.ops.fused_act import FusedLeakyReLU, fused_leaky_relu
from inversion.ops.upfirdn import upfirdn2d

__all__ = [
    "GeneratorConfig",
    "Generator",
    "default_channels",
    "infer_config",
    "generator_from_state_dict",
    "read_rosinality_checkpoint",
    "load_rosinality_checkpoint",
]

NoiseMode = Literal["const", "random"]


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """rosinality's channel table: 512 up to 32 px, then halving with resolution."""
    cm = channel_multiplier
    return {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256 * cm,
        128: 128 * cm,
        256: 64 * cm,
        512: 32 * cm,
        1024: 16 * cm,
    }


@dataclass
class GeneratorConfig(ModelConfig):
    """Hyper-parameters of :class:`Generator` (JSON-serialisable via :meth:`to_dict`).

    ``channels`` overrides the channel table (keys: resolutions 4..size); tiny test and
    bootstrap models use it, real checkpoints use the table with ``channel_multiplier``.
    """

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    lr_mlp: float = 0.01
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    channels: dict[int, int] | None = field(default=None)

    # -- presets ---------------------------------------------------------------------

    @classmethod
    def ffhq1024(cls) -> GeneratorConfig:
        """FFHQ config-f (``stylegan2-ffhq-config-f.pt``): 1024 px, 18 W+ codes."""
        return cls(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)

    @classmethod
    def ffhq256(cls) -> GeneratorConfig:
        """The 256 px / multiplier-2 layout (14 W+ codes)."""
        return cls(size=256, style_dim=512, n_mlp=8, channel_multiplier=2)

    @classmethod
    def tiny(cls) -> GeneratorConfig:
        """A 32 px, style-dim 64 generator for tests and the seeded bootstrap bundle."""
        return cls(
            size=32,
            style_dim=64,
            n_mlp=2,
            channel_multiplier=1,
            channels={4: 64, 8: 64, 16: 32, 32: 32},
        )

    @classmethod
    def preset(cls, name: str) -> GeneratorConfig:
        presets = {"ffhq1024": cls.ffhq1024, "ffhq256": cls.ffhq256, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError(f"unknown generator preset {name!r}; known: {sorted(presets)}")
        return presets[name]()

    # -- validation and derived values -------------------------------------------

    def validate(self) -> None:
        self.blur_kernel = tuple(int(k) for k in self.blur_kernel)
        if self.channels is not None:
            self.channels = {int(k): int(v) for k, v in self.channels.items()}
        if self.size < 8 or self.size & (self.size - 1):
            raise ConfigError(f"size must be a power of two >= 8, got {self.size}")
        if self.style_dim <= 0 or self.n_mlp < 0:
            raise ConfigError("style_dim must be > 0 and n_mlp >= 0")
        if self.channels is not None:
            missing = [r for r in self.resolutions if r not in self.channels]
            if missing:
                raise ConfigError(f"channels override lacks resolutions {missing}")
        elif self.size > 1024:
            raise ConfigError("sizes above 1024 need an explicit channels table")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def resolutions(self) -> list[int]:
        """Block resolutions, 4 .. size."""
        return [2**i for i in range(2, self.log_size + 1)]

    @property
    def channel_table(self) -> dict[int, int]:
        table = (
            self.channels
            if self.channels is not None
            else default_channels(self.channel_multiplier)
        )
        return {r: table[r] for r in self.resolutions}

    @property
    def n_latent(self) -> int:
        """Number of W+ codes: 2 * log2(size) - 2 (18 at 1024 px)."""
        return self.log_size * 2 - 2

    @property
    def num_layers(self) -> int:
        """Number of styled convs (and noise buffers)."""
        return (self.log_size - 2) * 2 + 1


# --- building blocks (names and arithmetic as in rosinality's model.py) -------------


class PixelNorm(nn.Module):
    def forward(self, input: Tensor) -> Tensor:
        return input * torch.rsqrt(torch.mean(input**2, dim=1, keepdim=True) + 1e-8)


def make_kernel(k: Sequence[int]) -> Tensor:
    kernel = torch.tensor(k, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    kernel /= kernel.sum()
    return kernel


class Upsample(nn.Module):
    """2x FIR upsampling of the to-RGB skip path."""

    def __init__(self, kernel: Sequence[int], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * (factor**2)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        pad0 = (p + 1) // 2 + factor - 1
        pad1 = p // 2
        self.pad = (pad0, pad1)

    def forward(self, input: Tensor) -> Tensor:
        return upfirdn2d(input, self.kernel, up=self.factor, down=1, pad=self.pad)


class Blur(nn.Module):
    """FIR low-pass after the transposed conv (removes its checkerboard aliasing)."""

    def __init__(self, kernel: Sequence[int], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, input: Tensor) -> Tensor:
        return upfirdn2d(input, self.kernel, pad=self.pad)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate (weights stored unscaled)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias: nn.Parameter | None
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        else:
            self.bias = None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(input, self.weight * self.scale)
            return fused_leaky_relu(out, bias)
        return F.linear(input, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}"


class ModulatedConv2d(nn.Module):
    """Conv whose weights are scaled per sample by the style, then demodulated."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample

        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            pad0 = (p + 1) // 2 + factor - 1
            pad1 = p // 2 + 1
            self.blur = Blur(blur_kernel, pad=(pad0, pad1), upsample_factor=factor)

        fan_in = in_channel * kernel_size**2
        self.scale = 1 / math.sqrt(fan_in)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def extra_repr(self) -> str:
        return (
            f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
            f"upsample={self.upsample}, demodulate={self.demodulate}"
        )

    def forward(self, input: Tensor, style: Tensor) -> Tensor:
        batch, in_channel, height, width = input.shape
        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        weight = weight.view(
            batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size
        )

        if self.upsample:
            input = input.view(1, batch * in_channel, height, width)
            weight = weight.view(
                batch, self.out_channel, in_channel, self.kernel_size, self.kernel_size
            )
            weight = weight.transpose(1, 2).reshape(
                batch * in_channel, self.out_channel, self.kernel_size, self.kernel_size
            )
            out = F.conv_transpose2d(input, weight, padding=0, stride=2, groups=batch)
            _, _, height, width = out.shape
            out = out.view(batch, self.out_channel, height, width)
            return self.blur(out)

        input = input.view(1, batch * in_channel, height, width)
        out = F.conv2d(input, weight, padding=self.padding, groups=batch)
        _, _, height, width = out.shape
        return out.view(batch, self.out_channel, height, width)


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned scalar ``weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 starting tensor."""

    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, input: Tensor) -> Tensor:
        return self.input.repeat(input.shape[0], 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> fused leaky ReLU (bias)."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel,
            out_channel,
            kernel_size,
            style_dim,
            upsample=upsample,
            blur_kernel=blur_kernel,
            demodulate=demodulate,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, input: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        out = self.conv(input, style)
        out = self.noise(out, noise=noise)
        return self.activate(out)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) plus the upsampled skip."""

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, input: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(input, style)
        out = out + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# --- the generator ------------------------------------------------------------------


class Generator(nn.Module):
    """StyleGAN2 generator (mapping network + synthesis network).

    ``forward`` keeps rosinality's signature; :meth:`synthesis` is the W+ entry point
    used by the inversion code.
    """

    def __init__(self, cfg: GeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else GeneratorConfig()
        cfg.validate()
        self.cfg = cfg
        self.size = cfg.size
        self.style_dim = cfg.style_dim
        blur_kernel = cfg.blur_kernel

        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(cfg.n_mlp):
            layers.append(
                EqualLinear(
                    cfg.style_dim, cfg.style_dim, lr_mul=cfg.lr_mlp, activation="fused_lrelu"
                )
            )
        self.style = nn.Sequential(*layers)

        self.channels = cfg.channel_table
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(
            self.channels[4], self.channels[4], 3, cfg.style_dim, blur_kernel=blur_kernel
        )
        self.to_rgb1 = ToRGB(self.channels[4], cfg.style_dim, upsample=False)

        self.log_size = cfg.log_size
        self.num_layers = cfg.num_layers
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept for parity with the reference
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()

        in_channel = self.channels[4]
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            shape = [1, 1, 2**res, 2**res]
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(*shape))

        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(
                StyledConv(
                    in_channel,
                    out_channel,
                    3,
                    cfg.style_dim,
                    upsample=True,
                    blur_kernel=blur_kernel,
                )
            )
            self.convs.append(
                StyledConv(out_channel, out_channel, 3, cfg.style_dim, blur_kernel=blur_kernel)
            )
            self.to_rgbs.append(ToRGB(out_channel, cfg.style_dim))
            in_channel = out_channel

        self.n_latent = cfg.n_latent

    # -- small helpers ---------------------------------------------------------------

    @property
    def resolutions(self) -> list[int]:
        return self.cfg.resolutions

    def channels_at(self, res: int) -> int:
        """Channels of the activation after the block at resolution ``res``."""
        if res not in self.channels:
            raise ValueError(f"no generator block at resolution {res}; have {self.resolutions}")
        return self.channels[res]

    def _device(self) -> torch.device:
        return self.input.input.device

    def make_noise(self, generator: torch.Generator | None = None) -> list[Tensor]:
        """One fresh noise map per layer (batch 1), as in the reference."""
        device = self._device()
        shapes = [2**2] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]
        return [torch.randn(1, 1, s, s, device=device, generator=generator) for s in shapes]

    def stored_noise(self) -> list[Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    @torch.no_grad()
    def mean_latent(self, n_latent: int, generator: torch.Generator | None = None) -> Tensor:
        """Mean of ``n_latent`` mapped samples, shape (1, style_dim) as in the reference."""
        latent_in = torch.randn(
            n_latent, self.style_dim, device=self._device(), generator=generator
        )
        return self.style(latent_in.to(self.input.input.dtype)).mean(0, keepdim=True)

    def get_latent(self, input: Tensor) -> Tensor:
        """Z -> W through the mapping network."""
        return self.style(input)

    # -- rosinality's forward ---------------------------------------------------------

    def forward(
        self,
        styles: Sequence[Tensor],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[Tensor | None] | None = None,
        randomize_noise: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Reference-compatible entry point: a list of Z (or W) codes -> (image, W+?).

        One code: broadcast to all layers (a (B, n_latent, D) code is used as W+).
        Two codes: style mixing, codes [0, inject_index) from the first.
        """
        if not input_is_latent:
            styles = [self.style(s) for s in styles]

        if noise is None:
            if randomize_noise:
                noise = [None] * self.num_layers
            else:
                noise = self.stored_noise()

        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]

        if len(styles) < 2:
            if styles[0].ndim < 3:
                latent = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
            else:
                latent = styles[0]
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, ()).item())
            latent = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
            latent2 = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
            latent = torch.cat([latent, latent2], 1)

        image, _ = self._synthesize(latent, list(noise), None, None)
        if return_latents:
            return image, latent
        return image, None

    # -- W+ synthesis with the feature hook -------------------------------------------

    def synthesis(
        self,
        wplus: Tensor,
        *,
        noise: NoiseMode | Sequence[Tensor] = "const",
        feature_residual: Mapping[int, Tensor] | None = None,
        return_features: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Render W+ codes (B, n_latent, style_dim) — or W codes (B, style_dim).

        Args:
            noise: ``"const"`` uses the stored ``noises.noise_i`` buffers (deterministic,
                what inversion uses); ``"random"`` draws fresh per-sample noise from
                ``generator`` (seeded when given); or an explicit list of tensors.
            feature_residual: ``{res: (B or 1, C_res, res, res)}`` added to the
                activation right after the block at resolution ``res`` (after its two
                convs, before its to-RGB), so it flows into all later layers.
            return_features: a resolution whose (post-residual) activation to return.

        Returns:
            the image (B, 3, size, size), or ``(image, features)`` when
            ``return_features`` is given.
        """
        if wplus.ndim == 2:
            wplus = wplus.unsqueeze(1).repeat(1, self.n_latent, 1)
        if wplus.ndim != 3 or wplus.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(
                f"expected W+ of shape (B, {self.n_latent}, {self.style_dim}), "
                f"got {tuple(wplus.shape)}"
            )
        batch = wplus.shape[0]
        noises = self._resolve_noise(noise, batch, generator)

        residual = dict(feature_residual or {})
        for res, value in residual.items():
            self._check_residual(res, value, batch)
        if return_features is not None and return_features not in self.channels:
            raise ValueError(
                f"return_features={return_features}: no block at that resolution; "
                f"have {self.resolutions}"
            )

        image, features = self._synthesize(wplus, noises, residual, return_features)
        if return_features is not None:
            assert features is not None
            return image, features
        return image

    def _resolve_noise(
        self,
        noise: NoiseMode | Sequence[Tensor],
        batch: int,
        generator: torch.Generator | None,
    ) -> list[Tensor | None]:
        if isinstance(noise, str):
            if noise == "const":
                return list(self.stored_noise())
            if noise == "random":
                device, dtype = self._device(), self.input.input.dtype
                shapes = [4] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]
                return [
                    torch.randn(batch, 1, s, s, device=device, generator=generator).to(dtype)
                    for s in shapes
                ]
            raise ValueError(f"noise must be 'const', 'random' or a list, got {noise!r}")
        noises = list(noise)
        if len(noises) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} noise tensors, got {len(noises)}")
        return noises

    def _check_residual(self, res: int, value: Tensor, batch: int) -> None:
        if res not in self.channels:
            raise ValueError(
                f"feature_residual at {res} px: no generator block there; have {self.resolutions}"
            )
        expected = (self.channels[res], res, res)
        if (
            value.ndim != 4
            or tuple(value.shape[1:]) != expected
            or value.shape[0]
            not in (
                1,
                batch,
            )
        ):
            raise ValueError(
                f"feature_residual at {res} px must be (B, {expected[0]}, {res}, {res}), "
                f"got {tuple(value.shape)}"
            )

    def _synthesize(
        self,
        latent: Tensor,
        noise: list[Tensor | None],
        residual: Mapping[int, Tensor] | None,
        return_features: int | None,
    ) -> tuple[Tensor, Tensor | None]:
        residual = residual or {}
        features: Tensor | None = None

        out = self.input(latent)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        if 4 in residual:
            out = out + residual[4]
        if return_features == 4:
            features = out
        skip = self.to_rgb1(out, latent[:, 1])

        i = 1
        res = 4
        for conv1, conv2, noise1, noise2, to_rgb in zip(
            self.convs[::2],
            self.convs[1::2],
            noise[1::2],
            noise[2::2],
            self.to_rgbs,
            strict=True,
        ):
            res *= 2
            out = conv1(out, latent[:, i], noise=noise1)
            out = conv2(out, latent[:, i + 1], noise=noise2)
            if res in residual:
                out = out + residual[res]
            if return_features == res:
                features = out
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2

        return skip, features


# --- checkpoints --------------------------------------------------------------------

_STYLE_KEY = re.compile(r"^style\.(\d+)\.weight$")
_CONV_KEY = re.compile(r"^convs\.(\d+)\.conv\.weight$")


def infer_config(state_dict: Mapping[str, Tensor], lr_mlp: float = 0.01) -> GeneratorConfig:
    """Read a :class:`GeneratorConfig` off a rosinality ``g_ema`` state dict's shapes.

    size from the number of convs, n_mlp from the ``style.*`` keys, style_dim from the
    modulation layers, channel multiplier from the 64 px channels (or an explicit
    channels table when the shapes do not follow rosinality's table).
    """
    try:
        n_mlp = sum(1 for k in state_dict if _STYLE_KEY.match(k))
        n_convs = sum(1 for k in state_dict if _CONV_KEY.match(k))
        style_dim = int(state_dict["conv1.conv.modulation.weight"].shape[1])
        if n_convs == 0 or n_convs % 2:
            raise CheckpointError(f"unexpected number of styled convs: {n_convs}")
        log_size = n_convs // 2 + 2
        size = 2**log_size
        channels = {4: int(state_dict["input.input"].shape[1])}
        for i in range(3, log_size + 1):
            channels[2**i] = int(state_dict[f"convs.{2 * (i - 3)}.conv.weight"].shape[1])
    except KeyError as exc:
        raise CheckpointError(
            f"not a StyleGAN2 (rosinality) generator state dict: missing key {exc}"
        ) from None
    except (AttributeError, IndexError, TypeError) as exc:
        raise CheckpointError(f"not a StyleGAN2 (rosinality) generator state dict: {exc}") from None

    for cm in (1, 2, 4):
        table = default_channels(cm)
        if size <= 1024 and all(table[r] == c for r, c in channels.items()):
            if size < 64 and cm != 2:
                continue  # table does not depend on cm below 64 px: keep the default 2
            return GeneratorConfig(
                size=size,
                style_dim=style_dim,
                n_mlp=n_mlp,
                channel_multiplier=cm,
                lr_mlp=lr_mlp,
            )
    return GeneratorConfig(
        size=size,
        style_dim=style_dim,
        n_mlp=n_mlp,
        channel_multiplier=1,
        lr_mlp=lr_mlp,
        channels=channels,
    )


def generator_from_state_dict(
    state_dict: Mapping[str, Tensor],
    cfg: GeneratorConfig | None = None,
    *,
    device: torch.device | str | None = None,
) -> Generator:
    """Build a generator for ``state_dict`` (config inferred unless given), load strictly."""
    cfg = cfg if cfg is not None else infer_config(state_dict)
    state = {k: (v.float() if torch.is_floating_point(v) else v) for k, v in state_dict.items()}
    with torch.device("meta"):
        g = Generator(cfg)
    try:
        g.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"generator weights do not fit {cfg.to_dict()}: {exc}") from None
    if device is not None:
        g = g.to(device)
    return g.eval()


def read_rosinality_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a rosinality checkpoint safely; returns ``{"g_ema": ..., "latent_avg": ...}``.

    ``latent_avg`` is None when the file has none. Training leftovers are dropped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"generator checkpoint {path!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors all land here
        raise CheckpointError(
            f"cannot read generator checkpoint {path!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(ckpt, Mapping) or "g_ema" not in ckpt:
        raise CheckpointError(
            f"{path!r} is not a rosinality StyleGAN2 checkpoint (no 'g_ema' state dict)"
        )
    g_ema = ckpt["g_ema"]
    if not isinstance(g_ema, Mapping) or not all(isinstance(v, Tensor) for v in g_ema.values()):
        raise CheckpointError(f"{path!r}: 'g_ema' is not a state dict of tensors")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None:
        if not isinstance(latent_avg, Tensor):
            raise CheckpointError(f"{path!r}: 'latent_avg' is not a tensor")
        latent_avg = latent_avg.detach().float().reshape(-1)
    return {"g_ema": dict(g_ema), "latent_avg": latent_avg}


def load_rosinality_checkpoint(
    path: str | os.PathLike[str],
    *,
    mean_latent_samples: int = 10_000,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[Generator, Tensor]:
    """Load ``path`` -> ``(generator in eval mode, latent_avg (style_dim,))``.

    The config is inferred from the state dict. When the checkpoint has no
    ``latent_avg``, it is estimated as the mean of ``mean_latent_samples`` mapped
    samples drawn with ``seed`` (deterministic).
    """
    ckpt = read_rosinality_checkpoint(path)
    g = generator_from_state_dict(ckpt["g_ema"], device=device)
    latent_avg = ckpt["latent_avg"]
    if latent_avg is None:
        gen = torch.Generator(device=g._device()).manual_seed(seed)
        latent_avg = g.mean_latent(mean_latent_samples, generator=gen)[0]
    latent_avg = latent_avg.to(g._device())
    if latent_avg.shape != (g.style_dim,):
        raise CheckpointError(
            f"latent_avg has shape {tuple(latent_avg.shape)}, expected ({g.style_dim},)"
        )
    return g, latent_avg
