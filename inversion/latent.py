"""The one latent file format: W+ codes (+ detail map) as safetensors with metadata.

A job's latent (stored by the platform's worker, downloaded from the API) and the
files ``python -m inversion invert`` writes are the same bytes, so either can be fed to
``python -m inversion edit``. safetensors holds only tensors and a string header: it
loads anywhere without unpickling code. Layout::

    tensors   wplus   float32 (B, n_latent, style_dim)  absolute W+ codes
              detail  float32 (B, C, H, W)              the encoder's detail map, if any
    metadata  format         "styleledger-latent/1"
              model_version  the bundle version (manifest SHA-256) that inverted it
              wplus_shape    "B,n_latent,style_dim"
              detail_shape   "B,C,H,W" (only with a detail map)

Files written before the shape fields existed (the platform's first latents) read the
same way; their shapes come from the tensors. The first CLI versions wrote
``torch.save`` pickles instead: those are refused with
:class:`~inversion.errors.LatentFormatError` (unpickling an uploaded file can run code),
and the message says how to make a new one. torch is imported on first use, so the
command line can name the format without loading it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from inversion.errors import LatentFormatError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "LATENT_FORMAT",
    "MEDIA_TYPE",
    "SUFFIX",
    "looks_like_latent",
    "read_latent",
    "write_latent",
]

LATENT_FORMAT = "styleledger-latent/1"
MEDIA_TYPE = "application/vnd.styleledger.latent+safetensors"
SUFFIX = ".safetensors"
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_MAX_HEADER = 1 << 20


def _shape_text(t: Tensor) -> str:
    return ",".join(str(n) for n in t.shape)


def write_latent(wplus: Tensor, detail: Tensor | None, model_version: str | None) -> bytes:
    """The latent file's bytes (float32, CPU, contiguous)."""
    from safetensors.torch import save

    tensors = {"wplus": wplus.detach().float().cpu().contiguous()}
    metadata = {
        "format": LATENT_FORMAT,
        "model_version": model_version or "",
        "wplus_shape": _shape_text(tensors["wplus"]),
    }
    if detail is not None:
        tensors["detail"] = detail.detach().float().cpu().contiguous()
        metadata["detail_shape"] = _shape_text(tensors["detail"])
    return _canonical(save(tensors, metadata=metadata))


def _canonical(data: bytes) -> bytes:
    """``data`` with its safetensors header in one canonical key order.

    safetensors writes the header from a hash map, so the same tensors and metadata
    come out with their keys in varying order, and a latent's SHA-256 (what the audit
    log links) would differ between two runs of the same job. Sorted keys, compact
    separators, space-padded to 8 bytes as the format wants; the data offsets are
    relative to the end of the header, so they stay valid.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def _header(data: bytes) -> dict | None:
    """The safetensors JSON header, or None when ``data`` does not start with one."""
    if len(data) < 10:
        return None
    n = int.from_bytes(data[:8], "little")
    if n > min(_MAX_HEADER, len(data) - 8) or data[8:9] != b"{":
        return None
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header if isinstance(header, dict) else None


def looks_like_latent(data: bytes) -> bool:
    """True for safetensors bytes and for old ``torch.save`` latents (to be refused)."""
    return data.startswith(_TORCH_MAGIC) or _header(data) is not None


def read_latent(data: bytes, what: str = "latent") -> tuple[dict[str, Tensor], dict[str, str]]:
    """(tensors, metadata) of a latent file, checked; LatentFormatError naming ``what``."""
    if data.startswith(_TORCH_MAGIC):
        raise LatentFormatError(
            f"{what} is a torch.save (pickle) file, the old CLI latent format; only "
            f"{LATENT_FORMAT} safetensors latents are read (pickles can run code). Run "
            "`python -m inversion invert` again to write one"
        )
    header = _header(data)
    if header is None:
        raise LatentFormatError(f"{what} is not a {LATENT_FORMAT} latent (no safetensors header)")
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != LATENT_FORMAT:
        raise LatentFormatError(
            f"{what}: format {metadata.get('format')!r} is not {LATENT_FORMAT!r}"
        )
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise LatentFormatError(f"{what}: unreadable safetensors data: {exc}") from None
    _check(tensors, metadata, what)
    return tensors, metadata


def _check(tensors: dict[str, Tensor], metadata: dict[str, str], what: str) -> None:
    import torch

    extra = sorted(set(tensors) - {"wplus", "detail"})
    wplus, detail = tensors.get("wplus"), tensors.get("detail")
    if wplus is None or extra:
        raise LatentFormatError(
            f"{what}: expected tensors 'wplus' (and 'detail'), got {sorted(tensors)}"
        )
    if wplus.ndim != 3 or wplus.shape[0] < 1:
        raise LatentFormatError(
            f"{what}: wplus must be (B, n_latent, style_dim), got {tuple(wplus.shape)}"
        )
    if detail is not None and (detail.ndim != 4 or detail.shape[0] != wplus.shape[0]):
        raise LatentFormatError(
            f"{what}: detail must be (B, C, H, W) with B = "
            f"{wplus.shape[0]}, got {tuple(detail.shape)}"
        )
    for name, t in (("wplus", wplus), ("detail", detail)):
        if t is None:
            continue
        if not t.is_floating_point() or not torch.isfinite(t).all():
            raise LatentFormatError(f"{what}: {name} must hold finite floating-point values")
        declared = metadata.get(f"{name}_shape")
        if declared is not None and declared != _shape_text(t):
            raise LatentFormatError(
                f"{what}: {name} has shape {_shape_text(t)} but the metadata says {declared}"
            )
