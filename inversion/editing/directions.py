"""Edit directions in W (style_dim,) or W+ (n_latent, style_dim), and applying them.

An edit moves a W+ code along a direction: ``w' = w + strength * d`` on the layers
[start, end) only (coarse layers change pose and shape, middle ones expression,
fine ones colour). A W direction is the same vector for every layer; a W+ direction
has one row per layer. Directions come from files made elsewhere (InterFaceGAN
boundaries, GANSpace, StyleCLIP...), so everything loaded is checked: float dtype,
the expected shape, finite values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from inversion.errors import InvalidDirection

Space = Literal["w", "wplus"]

__all__ = [
    "Space",
    "direction_space",
    "validate_direction",
    "load_direction",
    "load_directions",
    "save_directions",
    "apply_direction",
]


def direction_space(direction: Tensor) -> Space:
    """``"w"`` for a (style_dim,) vector, ``"wplus"`` for (n_latent, style_dim)."""
    if direction.ndim == 1:
        return "w"
    if direction.ndim == 2:
        return "wplus"
    raise InvalidDirection(f"a direction must be 1-D or 2-D, got shape {tuple(direction.shape)}")


def validate_direction(
    direction: object,
    *,
    style_dim: int | None = None,
    n_latent: int | None = None,
    space: Space | None = None,
    name: str = "direction",
) -> Tensor:
    """Check a direction and return it as a contiguous float32 CPU tensor.

    Raises :class:`InvalidDirection` naming ``name`` on a non-tensor, a non-float dtype,
    a wrong shape or NaN/inf values.
    """
    if isinstance(direction, np.ndarray):
        if direction.dtype.kind != "f":
            raise InvalidDirection(f"{name}: dtype {direction.dtype} is not floating point")
        direction = torch.from_numpy(np.ascontiguousarray(direction))
    if not isinstance(direction, Tensor):
        raise InvalidDirection(f"{name}: expected a tensor, got {type(direction).__name__}")
    if not torch.is_floating_point(direction):
        raise InvalidDirection(f"{name}: dtype {direction.dtype} is not floating point")
    got = direction_space(direction) if direction.ndim in (1, 2) else None
    if got is None:
        raise InvalidDirection(
            f"{name}: shape {tuple(direction.shape)}; expected (style_dim,) or "
            "(n_latent, style_dim)"
        )
    if space is not None and got != space:
        raise InvalidDirection(f"{name}: a {got!r} direction where {space!r} is declared")
    if style_dim is not None and direction.shape[-1] != style_dim:
        raise InvalidDirection(
            f"{name}: last dimension {direction.shape[-1]}, expected style_dim {style_dim}"
        )
    if got == "wplus" and n_latent is not None and direction.shape[0] != n_latent:
        raise InvalidDirection(
            f"{name}: {direction.shape[0]} W+ rows, expected n_latent {n_latent}"
        )
    direction = direction.detach().to("cpu", torch.float32).contiguous()
    if not torch.isfinite(direction).all():
        raise InvalidDirection(f"{name}: contains NaN or infinite values")
    return direction


def _read(path: Path) -> object:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if suffix in (".pt", ".pth"):
            return torch.load(path, map_location="cpu", weights_only=True)
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
    except FileNotFoundError:
        raise InvalidDirection(f"direction file {str(path)!r} does not exist") from None
    except Exception as exc:
        raise InvalidDirection(
            f"cannot read direction file {str(path)!r}: {type(exc).__name__}: {exc}"
        ) from None
    raise InvalidDirection(
        f"{str(path)!r}: unsupported direction file type {suffix!r} "
        "(use .npy, .npz, .pt or .safetensors)"
    )


def load_direction(
    path: str | os.PathLike[str],
    *,
    style_dim: int | None = None,
    n_latent: int | None = None,
    key: str | None = None,
) -> Tensor:
    """Load one direction from ``.npy`` / ``.pt`` (a tensor, or a dict and ``key``)."""
    path = Path(path)
    data = _read(path)
    if isinstance(data, Mapping):
        if key is None:
            if len(data) != 1:
                raise InvalidDirection(
                    f"{str(path)!r} holds {len(data)} entries; name one with key= "
                    f"({sorted(map(str, data))})"
                )
            key = next(iter(data))
        if key not in data:
            raise InvalidDirection(f"{str(path)!r} has no direction {key!r}")
        data = data[key]
    elif key is not None:
        raise InvalidDirection(f"{str(path)!r} holds a single direction; key={key!r} is unused")
    return validate_direction(data, style_dim=style_dim, n_latent=n_latent, name=path.name)


def load_directions(
    path: str | os.PathLike[str],
    *,
    style_dim: int | None = None,
    n_latent: int | None = None,
) -> dict[str, Tensor]:
    """Load a file of named directions (``.pt`` dict, ``.npz``, ``.safetensors``).

    A single-tensor ``.npy`` / ``.pt`` file yields ``{file stem: direction}``.
    """
    path = Path(path)
    data = _read(path)
    if not isinstance(data, Mapping):
        data = {path.stem: data}
    if not data:
        raise InvalidDirection(f"{str(path)!r} holds no directions")
    out: dict[str, Tensor] = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise InvalidDirection(f"{str(path)!r}: direction names must be strings")
        out[name] = validate_direction(
            value, style_dim=style_dim, n_latent=n_latent, name=f"{path.name}:{name}"
        )
    return out


def save_directions(directions: Mapping[str, Tensor], path: str | os.PathLike[str]) -> None:
    """Write named directions as ``.pt`` (a plain dict) or ``.safetensors``."""
    path = Path(path)
    clean = {n: validate_direction(d, name=n) for n, d in directions.items()}
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(clean, path)
    else:
        torch.save(clean, path)


def apply_direction(
    wplus: Tensor,
    direction: Tensor,
    strength: float | Tensor,
    layers: tuple[int, int] | None = None,
) -> Tensor:
    """Return ``wplus`` moved by ``strength * direction`` on layers [start, end).

    Args:
        wplus: (B, n_latent, style_dim).
        direction: (style_dim,) or (n_latent, style_dim).
        strength: a scalar, or a (B,) tensor of per-sample strengths.
        layers: [start, end) layer range; ``None`` means all layers.
    """
    if wplus.ndim != 3:
        raise ValueError(f"wplus must be (B, n_latent, style_dim), got {tuple(wplus.shape)}")
    batch, n_latent, style_dim = wplus.shape
    start, end = layers if layers is not None else (0, n_latent)
    if not 0 <= start < end <= n_latent:
        raise ValueError(f"layer range [{start}, {end}) is not within [0, {n_latent})")
    d = direction.to(device=wplus.device, dtype=wplus.dtype)
    if d.ndim == 1:
        if d.shape[0] != style_dim:
            raise InvalidDirection(f"direction has dim {d.shape[0]}, W+ has {style_dim}")
        d = d.expand(n_latent, style_dim)
    elif d.shape != (n_latent, style_dim):
        raise InvalidDirection(
            f"W+ direction of shape {tuple(d.shape)} for W+ codes ({n_latent}, {style_dim})"
        )
    mask = torch.zeros(n_latent, 1, device=wplus.device, dtype=wplus.dtype)
    mask[start:end] = 1
    s = torch.as_tensor(strength, device=wplus.device, dtype=wplus.dtype)
    s = s.reshape(-1, 1, 1) if s.ndim == 1 else s
    if s.ndim == 3 and s.shape[0] not in (1, batch):
        raise ValueError(f"{s.shape[0]} strengths for a batch of {batch}")
    return wplus + s * (d * mask)
