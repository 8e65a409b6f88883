"""Fused leaky ReLU: bias add, leaky ReLU (slope 0.2) and a sqrt(2) gain.

StyleGAN2 keeps activations at unit variance by multiplying leaky ReLU outputs by
sqrt(2); its CUDA build fuses bias + activation + gain into one kernel. The parameter is
named ``bias`` (checkpoints store it as ``...activate.bias``), so the module must keep
that name. Plain PyTorch here: autograd handles the backward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_SLOPE = 0.2
DEFAULT_SCALE = math.sqrt(2.0)


def fused_leaky_relu(
    input: Tensor,
    bias: Tensor | None = None,
    negative_slope: float = DEFAULT_SLOPE,
    scale: float = DEFAULT_SCALE,
) -> Tensor:
    """``leaky_relu(input + bias, negative_slope) * scale``; bias broadcasts on dim 1."""
    if bias is not None:
        rest_dim = [1] * (input.ndim - bias.ndim - 1)
        input = input + bias.view(1, bias.shape[0], *rest_dim).to(input.dtype)
    return F.leaky_relu(input, negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Leaky ReLU with a learned per-channel bias (the ``activate`` of StyledConv)."""

    def __init__(
        self,
        channel: int,
        bias: bool = True,
        negative_slope: float = DEFAULT_SLOPE,
        scale: float = DEFAULT_SCALE,
    ) -> None:
        super().__init__()
        self.bias: nn.Parameter | None
        if bias:
            self.bias = nn.Parameter(torch.zeros(channel))
        else:
            self.bias = None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input: Tensor) -> Tensor:
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)
