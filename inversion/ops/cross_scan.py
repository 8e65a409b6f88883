"""The 4-direction cross-scan of VMamba's SS2D and its merge.

A 2-D map has no natural order for a causal scan, so SS2D scans it four times: row-major,
column-major, and both reversed. Each token then has seen every other token in at least
one direction. ``cross_scan`` lays the four orders side by side so one selective scan
call handles them (as 4*C channels); ``cross_merge`` maps each result back to the
(H, W) grid and sums the four, which is the adjoint of ``cross_scan``:
``cross_merge(cross_scan(x)) == 4 * x``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["DIRECTIONS", "cross_merge", "cross_scan"]

DIRECTIONS = ("row-major", "column-major", "row-major reversed", "column-major reversed")


def cross_scan(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4, C, H*W) in the orders of :data:`DIRECTIONS`."""
    b, c, h, w = x.shape
    rows = x.reshape(b, c, h * w)
    cols = x.transpose(2, 3).reshape(b, c, h * w)
    pair = torch.stack([rows, cols], dim=1)  # (B, 2, C, L)
    return torch.cat([pair, pair.flip(-1)], dim=1)


def cross_merge(y: Tensor, h: int, w: int) -> Tensor:
    """(B, 4, C, H*W) -> (B, C, H, W): undo each direction's order and sum the four."""
    b, k, c, L = y.shape
    if k != 4 or L != h * w:
        raise ValueError(f"expected (B, 4, C, {h * w}), got {tuple(y.shape)}")
    pair = y[:, :2] + y[:, 2:].flip(-1)  # forward orders
    rows = pair[:, 0].view(b, c, h, w)
    cols = pair[:, 1].view(b, c, w, h).transpose(2, 3)
    return rows + cols
