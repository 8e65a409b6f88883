"""A training-speed path for StyleGAN2's modulated convolution (same maths, no groups).

``ModulatedConv2d`` folds each sample's style into its own copy of the weights and runs a
grouped convolution (groups = batch): the reference's "fused" path, ideal on GPUs for
inference and the one the checkpoints expect. On CPU its backward pass dominates
training time. StyleGAN2's official code has the equivalent non-fused form used for
training: scale the *input* by the style, convolve with the shared weight, then scale
the *output* by the demodulation coefficients:

    conv(x, w * s)[b, o] * d[b, o]  ==  conv(x * s[b], w)[b, o] * d[b, o]

:func:`use_fast_modconv` switches a generator's modulated convs to that form in place
(weights and state-dict keys are untouched, so checkpoints are unchanged); it is
numerically equal up to float rounding (checked by the tests).

:func:`use_fast_blur` does the same for the FIR ``Blur`` layers (generator and
discriminator): the native upfirdn2d runs a one-channel convolution over B*C images,
whose backward pass is slow on CPU; a separable kernel ([1, 3, 3, 1]) is applied as
four shifted adds per axis instead. :func:`use_fast_ops` applies both.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.modules.stylegan2 import Blur, ModulatedConv2d

__all__ = ["use_fast_modconv", "use_fast_blur", "use_fast_ops", "fast_modconv_forward"]


def fast_modconv_forward(self: ModulatedConv2d, input: Tensor, style: Tensor) -> Tensor:
    batch, in_channel, _, _ = input.shape
    s = self.modulation(style)  # (B, in)
    weight = self.scale * self.weight[0]  # (out, in, k, k)
    x = input * s.view(batch, in_channel, 1, 1).to(input.dtype)
    if self.upsample:
        w_t = weight.transpose(0, 1)  # (in, out, k, k)
        out = F.conv_transpose2d(x, w_t.to(x.dtype), padding=0, stride=2)
    else:
        out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
    if self.demodulate:
        # d[b, o] = rsqrt(sum_{i,k} (w[o,i,k] * s[b,i])^2 + eps)
        wsq = weight.pow(2).sum([2, 3])  # (out, in)
        demod = torch.rsqrt(s.pow(2) @ wsq.t() + self.eps)  # (B, out)
        out = out * demod.view(batch, self.out_channel, 1, 1).to(out.dtype)
    if self.upsample:
        out = self.blur(out)
    return out


def use_fast_modconv(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every ModulatedConv2d under ``module`` to the non-grouped form (in place)."""
    for m in module.modules():
        if isinstance(m, ModulatedConv2d):
            if enabled:
                m.forward = types.MethodType(fast_modconv_forward, m)
            elif "forward" in m.__dict__:
                del m.forward
    return module


def _separable(kernel: Tensor) -> tuple[Tensor, Tensor] | None:
    w = torch.flip(kernel, [0, 1]).float()
    total = w.sum()
    if total == 0:
        return None
    a, b = w.sum(1), w.sum(0) / total
    if not torch.allclose(a[:, None] * b[None, :], w, atol=1e-6):
        return None
    return a, b


def fast_blur_forward(self: Blur, input: Tensor) -> Tensor:
    a, b = self._sep  # type: ignore[attr-defined]
    p0, p1 = self.pad
    x = F.pad(input, (p0, p1, p0, p1))
    kh, kw = len(a), len(b)
    h, w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = sum(float(a[i]) * x[:, :, i : i + h, :] for i in range(kh))
    return sum(float(b[j]) * out[:, :, :, j : j + w] for j in range(kw))


def use_fast_blur(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every separable, non-cropping Blur under ``module`` to shifted adds."""
    for m in module.modules():
        if isinstance(m, Blur):
            if enabled:
                sep = _separable(m.kernel)
                if sep is None or min(m.pad) < 0:
                    continue
                m._sep = sep
                m.forward = types.MethodType(fast_blur_forward, m)
            elif "forward" in m.__dict__:
                del m.forward
    return module


def use_fast_ops(module: nn.Module, enabled: bool = True) -> nn.Module:
    use_fast_modconv(module, enabled)
    use_fast_blur(module, enabled)
    return module
