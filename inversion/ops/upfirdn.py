"""upfirdn2d: upsample, FIR-filter, downsample — in plain PyTorch.

StyleGAN2 resamples with a separable [1, 3, 3, 1] low-pass filter instead of nearest or
bilinear interpolation. rosinality's stylegan2-pytorch ships a CUDA kernel for it and a
"native" fallback; only the fallback is here, because it is exact, runs on every device
and is fast enough for inference (the cost is one grouped conv). The arithmetic follows
``upfirdn2d_native`` so that outputs match the reference implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f"expected an int or a pair, got {value!r}")
    return int(value[0]), int(value[1])


def upfirdn2d(
    input: Tensor,
    kernel: Tensor,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    pad: Sequence[int] = (0, 0),
) -> Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel``, downsample.

    Args:
        input: (B, C, H, W).
        kernel: (kh, kw) FIR filter (applied as a true convolution, i.e. flipped).
        up, down: integer factors, one value or (x, y).
        pad: (pad0, pad1) for both axes, or (x0, x1, y0, y1); negative values crop.
    """
    up_x, up_y = _pair(up)
    down_x, down_y = _pair(down)
    if len(pad) == 2:
        pad_x0, pad_x1 = pad
        pad_y0, pad_y1 = pad
    elif len(pad) == 4:
        pad_x0, pad_x1, pad_y0, pad_y1 = pad
    else:
        raise ValueError(f"pad must have 2 or 4 values, got {pad!r}")
    return upfirdn2d_native(
        input, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1
    )


def upfirdn2d_native(
    input: Tensor,
    kernel: Tensor,
    up_x: int,
    up_y: int,
    down_x: int,
    down_y: int,
    pad_x0: int,
    pad_x1: int,
    pad_y0: int,
    pad_y1: int,
) -> Tensor:
    """The reference algorithm, step by step (see :func:`upfirdn2d`)."""
    _, channel, in_h, in_w = input.shape
    x = input.reshape(-1, in_h, in_w, 1)
    _, in_h, in_w, minor = x.shape
    kernel_h, kernel_w = kernel.shape

    # Zero insertion: each pixel followed by (up - 1) zeros along each axis.
    out = x.view(-1, in_h, 1, in_w, 1, minor)
    out = F.pad(out, [0, 0, 0, up_x - 1, 0, 0, 0, up_y - 1])
    out = out.view(-1, in_h * up_y, in_w * up_x, minor)

    # Positive pads add zeros, negative pads crop.
    out = F.pad(out, [0, 0, max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
    out = out[
        :,
        max(-pad_y0, 0) : out.shape[1] - max(-pad_y1, 0),
        max(-pad_x0, 0) : out.shape[2] - max(-pad_x1, 0),
        :,
    ]

    out = out.permute(0, 3, 1, 2)
    out = out.reshape([-1, 1, in_h * up_y + pad_y0 + pad_y1, in_w * up_x + pad_x0 + pad_x1])
    w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w).to(out.dtype)
    out = F.conv2d(out, w)
    out = out.reshape(
        -1,
        minor,
        in_h * up_y + pad_y0 + pad_y1 - kernel_h + 1,
        in_w * up_x + pad_x0 + pad_x1 - kernel_w + 1,
    )
    out = out.permute(0, 2, 3, 1)
    out = out[:, ::down_y, ::down_x, :]

    out_h = (in_h * up_y + pad_y0 + pad_y1 - kernel_h + down_y) // down_y
    out_w = (in_w * up_x + pad_x0 + pad_x1 - kernel_w + down_x) // down_x
    return out.reshape(-1, channel, out_h, out_w)
