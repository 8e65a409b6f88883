"""What an edit does to real inversions, measured: one definition for choosing and reporting.

The demo's edits are chosen on held-out ``val`` inversions (``train directions
--bundle``) and reported on ``test`` inversions (``python -m inversion evaluate``); both
call :func:`measure_edit`, so the catalog's claims and the report's figures mean the same
thing.

Protocol: every image is moved *towards the other side* of its attribute -- images above
the attribute's threshold by ``-strength``, the others by ``+strength`` -- so both signs
of an edit are exercised. Per image:

* category attributes (``footwear``, ``long_sleeves``): *success* = the classifier's
  group label flips (the edit changes what it names: the product category);
  *tone kept* = the item's mean brightness moves by at most :data:`TONE_TOLERANCE`.
* measured attributes (``brightness``: mean grey of the item's pixels on [0, 1];
  ``bulk``: fraction of the frame the item covers): *success* = the measure moves in the
  requested direction by at least :data:`MIN_CHANGE` (or the edit's own declared
  ``min_change``: a gentle edit claims a smaller move and is held to that claim);
  *class kept* = the 10-way class is
  unchanged (the edit keeps what it does not name).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from inversion.training.classifier import CATEGORY_GROUPS, AttributeClassifier, pixel_measures

__all__ = ["MIN_CHANGE", "TONE_TOLERANCE", "attribute_of", "measure_edit", "summarise"]

# smallest change of a measured attribute that counts as "moved" (units of the measure)
MIN_CHANGE: dict[str, float] = {"brightness": 0.05, "bulk": 0.01}
TONE_TOLERANCE = 0.1  # category edits keep |delta mean item brightness| within this


def attribute_of(spec: Any) -> str | None:
    """The attribute a catalog edit acts on (its ``measured.attribute`` or direction)."""
    measured = getattr(spec, "measured", None) or {}
    if isinstance(measured.get("attribute"), str):
        return measured["attribute"]
    for prefix in ("interfacegan_", "conditional_"):
        if spec.direction.startswith(prefix):
            return spec.direction[len(prefix) :]
    return None


@torch.no_grad()
def measure_edit(
    render: Any,
    reconstruction: Tensor,
    clf: AttributeClassifier,
    attribute: str,
    strength: float,
    scores0: dict[str, Tensor] | None = None,
    min_change: float | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """Per-image effects of moving each image towards the other side by ``strength``.

    ``render(signed_strengths)`` renders the edited images for per-image signed
    strengths (B,). Returns ({success, class_kept, change, tone_change}, edited images);
    ``change`` is the attribute's change in the requested direction (measured attributes)
    or the flip of its score sign (category attributes).
    """
    s0 = scores0 if scores0 is not None else clf.attributes(reconstruction)
    m0 = pixel_measures(reconstruction)
    sign = torch.where(s0[attribute] > 0, -1.0, 1.0)
    edited = render(sign * strength)
    s1 = clf.attributes(edited)
    m1 = pixel_measures(edited)
    tone = m1["brightness"] - m0["brightness"]
    if attribute in CATEGORY_GROUPS:
        success = ((s1[attribute] > 0) != (s0[attribute] > 0)).float()
        change = success
    else:
        change = (m1[attribute] - m0[attribute]) * sign
        floor = MIN_CHANGE[attribute] if min_change is None else min_change
        success = (change >= floor).float()
    return {
        "success": success,
        "class_kept": (s1["class"] == s0["class"]).float(),
        "change": change,
        "tone_change": tone,
        "tone_kept": (tone.abs() <= TONE_TOLERANCE).float(),
    }, edited


def summarise(effects: dict[str, Tensor]) -> dict[str, float]:
    """Fractions (success, class kept, tone kept) and the mean changes, rounded."""
    return {
        "success": round(float(effects["success"].mean()), 4),
        "class_kept": round(float(effects["class_kept"].mean()), 4),
        "tone_kept": round(float(effects["tone_kept"].mean()), 4),
        "moved_any": round(float((effects["change"] > 0).float().mean()), 4),
        "mean_change": round(float(effects["change"].mean()), 4),
        "mean_abs_tone_change": round(float(effects["tone_change"].abs().mean()), 4),
    }
