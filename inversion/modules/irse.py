"""IR-SE bottleneck units (ArcFace's IResNet with squeeze-excitation), as pSp uses them.

Shared by the MambaStyle encoder's body and the pSp baseline, so the two differ only
where the designs differ. Unit: BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN -> SE,
plus a shortcut (1x1 max-pool with stride when the width is unchanged, else 1x1 conv +
BN), exactly as in pSp's ``bottleneck_IR_SE``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["BottleneckIRSE", "SEModule", "input_layer", "irse_stages"]


class SEModule(nn.Module):
    """Squeeze-excitation: global average -> 1x1 conv (C/r) -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class BottleneckIRSE(nn.Module):
    """One IR-SE unit; ``stride`` 2 halves the resolution (in the second conv)."""

    def __init__(self, in_channel: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, 16),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def input_layer(out_channels: int = 64) -> nn.Sequential:
    """pSp's stem: conv3x3(3 -> C) -> BN -> PReLU, full resolution."""
    return nn.Sequential(
        nn.Conv2d(3, out_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
    )


def irse_stages(in_channels: int, channels: Sequence[int], units: Sequence[int]) -> nn.ModuleList:
    """Stages of IR-SE units; each stage starts with a stride-2 unit (pSp's get_blocks)."""
    if len(channels) != len(units):
        raise ValueError("channels and units must have the same length")
    stages = nn.ModuleList()
    c_in = in_channels
    for c, n in zip(channels, units, strict=True):
        layers = [BottleneckIRSE(c_in, c, 2)] + [BottleneckIRSE(c, c, 1) for _ in range(n - 1)]
        stages.append(nn.Sequential(*layers))
        c_in = c
    return stages
