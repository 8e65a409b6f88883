"""The closed loop behind a catalog edit's ``keep``: restore a property per image.

A category swap (``footwear_swap``) darkens nearly every item, by an amount that differs
per image, so no fixed ``w + s*d`` keeps the item's tone. After the edit, this module
solves, for each image on its own, the strength of a second direction (a brightness
move on the finer W+ codes) that brings the item's mean brightness back to the
reconstruction's, by a bounded secant search. Each step renders the whole batch once;
an image stops moving once it is within a tenth of the tolerance, so its result does not
depend on its neighbours, and the same inputs give the same strengths (no randomness).
The best iterate per image is kept, the plain edit (strength 0) included, so the loop
never makes an image's tone worse than the edit alone.

Tone is measured with :func:`inversion.training.classifier.pixel_measures`, the same
function the evaluation scores ``tone_kept`` with.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from inversion.editing.catalog import KeepSpec
from inversion.editing.directions import apply_direction
from inversion.training.classifier import pixel_measures

__all__ = ["measure", "restore"]

_FIRST_GAIN = 20.0  # first guess: strength = -20 x drift (about the median slope's inverse)
_MIN_SLOPE = 1e-3  # a flatter (or wrong-signed) secant falls back to the typical slope
_TYPICAL_SLOPE = 0.02  # brightness change per unit strength on codes 5-7, measured on val


def measure(keep: KeepSpec, images: Tensor) -> Tensor:
    """The kept attribute of ``images`` (B,), as the evaluation measures it."""
    if keep.attribute == "tone":
        return pixel_measures(images)["brightness"]
    raise ValueError(f"no measure for kept attribute {keep.attribute!r}")  # KeepSpec refuses


def restore(
    keep: KeepSpec,
    direction: Tensor,
    edited: Tensor,
    first: Tensor,
    target: Tensor,
    render: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    """Correct ``edited`` W+ codes (B, L, D) so ``keep.attribute`` returns to ``target``.

    ``first`` is the render of ``edited`` itself (already made by the caller);
    ``render(codes)`` renders corrected codes for the same samples. Returns the chosen
    codes, their images and the per-image correction strengths (B,), at most
    ``keep.renders`` extra renders.
    """
    limit = keep.max_strength
    stop = keep.tolerance / 10
    c0 = torch.zeros(edited.shape[0], dtype=torch.float32)
    t0 = measure(keep, first) - target
    best_c, best_t = c0.clone(), t0.clone()
    best_codes, best_images = edited.clone(), first.clone()
    active = t0.abs() > stop
    c1 = (-t0 * _FIRST_GAIN).clamp(-limit, limit)
    for _ in range(keep.renders):
        if not bool(active.any()):
            break
        c1 = torch.where(active, c1, best_c)
        codes = apply_direction(edited, direction, c1.to(edited.dtype), keep.layers)
        images = render(codes)
        t1 = measure(keep, images) - target
        better = active & (t1.abs() < best_t.abs())
        best_c = torch.where(better, c1, best_c)
        best_t = torch.where(better, t1, best_t)
        best_codes[better] = codes[better]
        best_images[better] = images[better]
        active = active & (best_t.abs() > stop)
        step = c1 - c0
        step = step.where(step.abs() > 1e-6, torch.full_like(step, 1e-6))
        slope = (t1 - t0) / step
        slope = slope.where(slope > _MIN_SLOPE, torch.full_like(slope, _TYPICAL_SLOPE))
        c0, t0 = c1, t1
        c1 = (c1 - t1 / slope).clamp(-limit, limit)
    return best_codes, best_images, best_c
