"""Atomic, resumable training checkpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "ema_update", "requires_grad"]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save to a temp file in the same folder, then rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=False)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model (parameters); buffers copied."""
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach().to(pe.dtype), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Resumable:
    """`save()` / `resume()` for a trainer.

    The trainer provides `out` (its run folder), `info.is_main` (only rank 0 writes under
    DDP), `info.device`, and `state_dict()` / `load_state_dict()` holding everything a
    resumed run needs to continue bit for bit.
    """

    def save(self, path: Path | None = None) -> Path:
        path = path or self.out / "checkpoint.pt"
        if self.info.is_main:
            save_checkpoint(path, self.state_dict())
        return path

    def resume(self, path: str | Path | None = None) -> bool:
        path = Path(path) if path else self.out / "checkpoint.pt"
        if not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, map_location=self.info.device))
        return True
