"""A perceptual loss trained here: ``python -m inversion train perceptual``.

MambaStyle trains its encoder with LPIPS on ImageNet-pretrained VGG/AlexNet features.
No pretrained weights are reachable on this project's machines, so the demo trains its
own feature network on Fashion-MNIST (the generator's domain) and compares images the
way LPIPS does: per layer, unit-normalise each pixel's feature vector over channels,
take the squared difference, average over space, sum over layers.

The network is a small, plain CNN (no BatchNorm, so it behaves the same in training and
evaluation mode) trained as a 10-way classifier on the ``train`` split with a seed and
width different from the attribute classifier that *judges* the edits, so the encoder
is not trained against the evaluator. ``perceptual.pt`` is a TorchScript module
``f(x, y) -> (B,)`` on images in [-1, 1]: it plugs into ``train encoder --perceptual``
(:class:`~inversion.training.train_encoder.PluggableLoss`) like user-supplied LPIPS.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.training.classifier import accuracy, augment
from inversion.training.data import InfiniteSampler, load_fashion_mnist

__all__ = ["FeatureNet", "PerceptualDistance", "train_perceptual", "add_arguments", "run"]


class FeatureNet(nn.Module):
    """Three conv stages (32, 16, 8 px) and a linear head; the stages are the features."""

    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        w = width

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.LeakyReLU(0.2),
            )

        self.stages = nn.ModuleList([stage(3, w), stage(w, 2 * w), stage(2 * w, 4 * w)])
        self.head = nn.Linear(4 * w, n_classes)

    def features(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, s in enumerate(self.stages):
            if i:
                x = F.avg_pool2d(x, 2)
            x = s(x)
            feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)[-1].mean((2, 3)))


class PerceptualDistance(nn.Module):
    """LPIPS-style distance on :class:`FeatureNet` features (unit-normalised, unweighted)."""

    def __init__(self, net: FeatureNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        d = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        feats_x, feats_y = self.net.features(x), self.net.features(y)
        for i in range(len(feats_x)):
            fx = feats_x[i] / (feats_x[i].pow(2).sum(1, keepdim=True) + 1e-10).sqrt()
            fy = feats_y[i] / (feats_y[i].pow(2).sum(1, keepdim=True) + 1e-10).sqrt()
            d = d + (fx - fy).pow(2).sum(1).mean((1, 2))
        return d


def train_perceptual(
    out: str | Path,
    steps: int = 300,
    batch: int = 64,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 1,
    progress: bool = True,
    data_limit: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train :class:`FeatureNet` on ``train``; write ``perceptual.pt`` (TorchScript, on
    the CPU whatever ``device`` trained it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    x, y = load_fashion_mnist("train", limit=data_limit)
    xv, yv = load_fashion_mnist("val", limit=2000 if data_limit is None else data_limit)
    dev = torch.device(device)
    net = FeatureNet(width).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    sampler = InfiniteSampler(x.shape[0], batch, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    start = time.time()
    losses: list[float] = []
    for step in range(steps):
        idx = sampler.next()
        loss = F.cross_entropy(net(augment(x[idx], gen).to(dev)), y[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % 100 == 0:
            print(f"perceptual step {step + 1}/{steps} loss {sum(losses[-100:]) / 100:.4f}")
    net.eval().cpu()
    for p in net.parameters():
        p.requires_grad_(False)
    summary = {
        "steps": steps,
        "batch": batch,
        "width": width,
        "seed": seed,
        "device": str(dev),
        "val_accuracy": round(accuracy(net, xv, yv), 4),
        "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
        "wall_s": round(time.time() - start, 1),
        "data": f"fashion-mnist:train[0:{x.shape[0]}] (labels); val[0:{xv.shape[0]}] for "
        "the accuracy",
    }
    torch.jit.script(PerceptualDistance(net)).save(str(out / "perceptual.pt"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-limit", type=int, default=None)
    p.add_argument("--device", default="cpu", help="where to train (e.g. cuda); saved for the CPU")


def run(args: argparse.Namespace) -> int:
    summary = train_perceptual(
        args.out,
        args.steps,
        args.batch,
        args.lr,
        args.width,
        args.seed,
        progress=True,
        data_limit=args.data_limit,
        device=args.device,
    )
    print(json.dumps(summary))
    return 0
