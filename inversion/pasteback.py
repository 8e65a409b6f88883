"""Paste an edit back into the user's photo at the photo's own resolution.

Why: the model works on a small aligned crop; the requester wants *their* photo back,
at its size, with only the edited subject changed. The edit is carried from crop space
to photo space with the inverse of the alignment transform and blended through a
feathered mask:

* mode ``delta`` (default): the photo gets ``edited - reconstructed`` added. What the
  model could not reconstruct (texture, the photo's own detail) is kept, and an edit of
  strength 0 changes nothing at all.
* mode ``replace``: the photo gets the edited crop itself (for bundles whose
  reconstructions are faithful enough to stand alone).

The mask is computed analytically in crop coordinates: 0 on and outside the crop's
edge, rising over ``feather`` (a fraction of the crop side, smoothstep) after an inner
``inset``, 1 in the middle. Photo pixels whose mask is exactly 0 are copied from the
photo untouched, so everything outside the crop (and its inset band) is pixel-exact.
Crop images are sampled bilinearly at each photo pixel's centre; their own resolution
does not matter (a 32 px edit of a 400 px quad is upsampled by the warp).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from inversion.align.errors import TransformError
from inversion.align.transform import AlignmentTransform

__all__ = ["PasteMode", "crop_array", "feather_weights", "paste_mask", "paste_back"]

PasteMode = Literal["delta", "replace"]


def crop_array(image: Any) -> np.ndarray:
    """A crop as float32 (H, W, 3) in [0, 255].

    Accepts a PIL image, a uint8/float (H, W, 3) array in [0, 255], or a generator tensor
    (3, H, W) / (1, 3, H, W) in [-1, 1] (what :class:`~inversion.inverter.Inverter`
    returns).
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"paste one crop at a time, got a batch of {t.shape[0]}")
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) tensor, got {tuple(t.shape)}")
        return ((t.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy().astype(np.float32)
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got {arr.shape}")
    return arr


def feather_weights(u: np.ndarray, v: np.ndarray, feather: float, inset: float = 0.0) -> np.ndarray:
    """Mask weight at crop coordinates normalised to [0, 1] (u, v): 0 outside the crop."""
    edge = np.minimum(np.minimum(u, 1.0 - u), np.minimum(v, 1.0 - v)) - inset
    if feather <= 0:
        return (edge > 0).astype(np.float64)
    t = np.clip(edge / feather, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _region(transform: AlignmentTransform) -> tuple[int, int, int, int]:
    return transform.source_bounds()


def _crop_coords(
    transform: AlignmentTransform, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised crop coordinates (u, v in [0, 1] inside) of the box's pixel centres."""
    left, top, right, bottom = box
    xs = np.arange(left, right, dtype=np.float64) + 0.5
    ys = np.arange(top, bottom, dtype=np.float64) + 0.5
    gx, gy = np.meshgrid(xs, ys)
    m = transform.source_to_crop_matrix()
    s = float(transform.output_size)
    u = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / s
    v = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / s
    return u, v


def paste_mask(
    transform: AlignmentTransform, feather: float = 0.1, inset: float = 0.0
) -> np.ndarray:
    """The blend weight of every photo pixel, (height, width) float64 in [0, 1]."""
    w, h = transform.source_size
    out = np.zeros((h, w), dtype=np.float64)
    box = _region(transform)
    if box[2] > box[0] and box[3] > box[1]:
        u, v = _crop_coords(transform, box)
        out[box[1] : box[3], box[0] : box[2]] = feather_weights(u, v, feather, inset)
    return out


def _sample(crop: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, 3) of a (H, W, 3) crop at normalised coordinates (N,)."""
    img = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].double()
    grid = torch.from_numpy(np.stack([u * 2 - 1, v * 2 - 1], axis=-1))[None, None].double()
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].permute(1, 0).numpy()


def paste_back(
    photo: Image.Image,
    transform: AlignmentTransform,
    edited: Any,
    reconstructed: Any = None,
    *,
    mode: PasteMode = "delta",
    feather: float = 0.1,
    inset: float = 0.0,
) -> Image.Image:
    """The photo (RGB, its own size) with the edited crop blended back in.

    ``edited`` / ``reconstructed``: crops in any form :func:`crop_array` accepts, at any
    resolution. ``mode="delta"`` needs ``reconstructed``. ``feather`` and ``inset`` are
    fractions of the crop side (see :func:`feather_weights`).
    """
    if photo.size != transform.source_size:
        raise TransformError(
            f"transform was made for a {transform.source_size[0]}x{transform.source_size[1]} "
            f"photo, got {photo.size[0]}x{photo.size[1]}"
        )
    if mode not in ("delta", "replace"):
        raise ValueError(f"mode must be 'delta' or 'replace', got {mode!r}")
    if not 0 <= feather <= 0.5 or not 0 <= inset < 0.5:
        raise ValueError("feather must be in [0, 0.5] and inset in [0, 0.5)")
    edit = crop_array(edited)
    if mode == "delta":
        if reconstructed is None:
            raise ValueError("mode 'delta' needs the reconstructed crop")
        rec = crop_array(reconstructed)
        if rec.shape != edit.shape:
            raise ValueError(f"edited {edit.shape} and reconstructed {rec.shape} crops differ")
        source = edit - rec
    else:
        source = edit

    rgb = photo if photo.mode == "RGB" else photo.convert("RGB")
    out = np.array(rgb, dtype=np.uint8)  # a copy: the caller's photo is never touched
    box = _region(transform)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Image.fromarray(out, "RGB")
    u, v = _crop_coords(transform, box)
    weight = feather_weights(u, v, feather, inset)
    inside = weight > 0
    if not inside.any():
        return Image.fromarray(out, "RGB")
    sampled = _sample(source, u[inside], v[inside])
    region = out[box[1] : box[3], box[0] : box[2]]
    original = region[inside].astype(np.float64)
    wgt = weight[inside][:, None]
    if mode == "delta":
        blended = original + wgt * sampled
    else:
        blended = original * (1.0 - wgt) + wgt * sampled
    region[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")
