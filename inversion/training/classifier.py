"""The attribute classifier: what the demo's supervised edits are measured with.

A small CNN trained on the *real* Fashion-MNIST labels (training split; the 5k ``val``
split gives its held-out accuracy). It labels generated samples (for InterFaceGAN
boundaries) and judges edits in the quality report.

Attributes (each a score whose sign is the binary label, threshold 0):

* category attributes, from the classifier's class probabilities p:
  ``footwear``     = logit(p[sandal] + p[sneaker] + p[ankle boot])
  ``long_sleeves`` = logit(p[pullover] + p[coat] + p[shirt]) (among all items)
* measured attributes, from pixels (thresholds = medians over the real training set):
  ``brightness``   = mean grey level of the item's pixels (grey > 0.1) - median
  ``bulk``         = fraction of the 32x32 frame the item covers - median
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

from inversion.training.checkpoint import load_checkpoint, save_checkpoint
from inversion.training.data import FASHION_CLASSES, InfiniteSampler, load_fashion_mnist
from inversion.training.logger import RunLogger

__all__ = [
    "AttributeClassifier",
    "CATEGORY_GROUPS",
    "ATTRIBUTES",
    "pixel_measures",
    "train_classifier",
    "load_classifier",
    "add_arguments",
    "run",
]

CATEGORY_GROUPS: dict[str, tuple[int, ...]] = {
    "footwear": (5, 7, 9),
    "long_sleeves": (2, 4, 6),
}
MEASURED = ("brightness", "bulk")
ATTRIBUTES: tuple[str, ...] = (*CATEGORY_GROUPS, *MEASURED)
FG_THRESHOLD = 0.1  # grey level in [0, 1] above which a pixel belongs to the item


def pixel_measures(images: Tensor) -> dict[str, Tensor]:
    """Brightness (mean grey of item pixels) and bulk (item area fraction), in [0, 1]."""
    grey = images.float().mean(1).add(1).div(2).clamp(0, 1)  # (B, H, W)
    mask = (grey > FG_THRESHOLD).float()
    area = mask.mean((1, 2))
    bright = (grey * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)
    return {"brightness": bright, "bulk": area}


class AttributeClassifier(nn.Module):
    """3-stage CNN, 32x32 RGB in [-1, 1] -> 10 class logits; plus attribute scores."""

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(3, w), block(w, 2 * w), block(2 * w, 4 * w))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * w * 16, n_classes))
        self.register_buffer("medians", torch.tensor([0.5, 0.5]))  # brightness, bulk
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return self.head(self.features(x))

    @torch.no_grad()
    def attributes(self, images: Tensor, batch_size: int = 512) -> dict[str, Tensor]:
        """Attribute scores (sign = label) and ``class`` (argmax) for a batch of images."""
        outs: dict[str, list[Tensor]] = {k: [] for k in (*ATTRIBUTES, "class")}
        dev = next(self.parameters()).device
        for i in range(0, images.shape[0], batch_size):
            x = images[i : i + batch_size].to(dev).float()
            p = self(x).softmax(1)
            for name, group in CATEGORY_GROUPS.items():
                q = p[:, list(group)].sum(1).clamp(1e-6, 1 - 1e-6)
                outs[name].append(torch.log(q / (1 - q)).cpu())
            m = pixel_measures(x)
            outs["brightness"].append((m["brightness"] - self.medians[0]).cpu())
            outs["bulk"].append((m["bulk"] - self.medians[1]).cpu())
            outs["class"].append(p.argmax(1).cpu())
        return {k: torch.cat(v) for k, v in outs.items()}


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / max(1, x.shape[0])


def augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random horizontal flips and +-2 px shifts (cheap, label-preserving)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x


def train_classifier(
    out: str | Path,
    steps: int = 1500,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    width: int = 32,
    data_limit: int | None = None,
    time_budget_s: float | None = None,
    train_data: tuple[Tensor, Tensor] | None = None,
    val_data: tuple[Tensor, Tensor] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on the ``train`` split, report ``val`` accuracy; write ``classifier.pt``."""
    out = Path(out)
    torch.manual_seed(seed)
    x, y = train_data if train_data is not None else load_fashion_mnist("train", limit=data_limit)
    xv, yv = val_data if val_data is not None else load_fashion_mnist("val")
    model = AttributeClassifier(width=width)
    m = pixel_measures(x)
    model.medians.copy_(torch.stack([m["brightness"].median(), m["bulk"].median()]))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    sampler = InfiniteSampler(x.shape[0], batch, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    logger = RunLogger(out, tensorboard=False)
    start = time.time()
    losses = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="classifier", dynamic_ncols=True)
    done = 0
    for step in range(steps):
        if time_budget_s is not None and time.time() - start > time_budget_s:
            break
        model.train()
        idx = sampler.next()
        xb = augment(x[idx], gen)
        loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if bar is not None:
            bar.update(1)
        if done % 100 == 0:
            logger.log(done, loss=sum(losses[-100:]) / len(losses[-100:]))
    if bar is not None:
        bar.close()
    model.eval()
    val_acc = accuracy(model, xv, yv)
    summary = {
        "steps": done,
        "batch": batch,
        "seed": seed,
        "width": width,
        "val_accuracy": round(val_acc, 4),
        "wall_s": round(time.time() - start, 1),
        "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
        "medians": [round(float(v), 4) for v in model.medians],
        "classes": FASHION_CLASSES,
    }
    save_checkpoint(
        out / "classifier.pt", {"state": model.state_dict(), "width": width, "summary": summary}
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    logger.close()
    return summary


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> AttributeClassifier:
    ckpt = load_checkpoint(path, map_location=device)
    model = AttributeClassifier(width=int(ckpt["width"]))
    model.load_state_dict(ckpt["state"])
    return model.to(device).eval()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=None)
    p.add_argument("--data-limit", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    summary = train_classifier(
        args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        width=args.width,
        data_limit=args.data_limit,
        time_budget_s=args.time_budget,
    )
    print(json.dumps(summary))
    return 0
