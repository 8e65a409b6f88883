"""StyleGAN2 generator training: non-saturating loss, lazy R1, EMA, style mixing.

The loop follows rosinality's ``train.py`` (the reference the generator's weights stay
compatible with) minus path-length regularisation (optional there, skipped here for
speed on small models): logistic non-saturating G/D losses, R1 on reals every
``d_reg_every`` steps (lazy regularisation, with Adam's lr/betas adjusted), style mixing
with probability ``mixing``, an EMA generator (``g_ema``, the one that ships), mixed
precision (bf16 autocast) on CUDA, DistributedDataParallel under torchrun.

Checkpoints (``<out>/checkpoint.pt``) hold every network, both optimisers, the data
sampler's position and all RNG states, so a resumed run continues bit-identically.
``<out>/generator.pt`` is the export in rosinality's format (``g_ema``, ``latent_avg``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.modules.stylegan2 import Generator, GeneratorConfig
from inversion.training import ddp
from inversion.training.checkpoint import (
    Resumable,
    ema_update,
    requires_grad,
    save_checkpoint,
)
from inversion.training.data import InfiniteSampler, batch_from, make_dataset
from inversion.training.discriminator import Discriminator, DiscriminatorConfig
from inversion.training.fastconv import use_fast_ops
from inversion.training.logger import RunLogger

__all__ = ["GANTrainConfig", "GANTrainer", "demo_generator_config", "add_arguments", "run"]


def demo_generator_config() -> GeneratorConfig:
    """The demo's 32 px generator: 8 W+ codes of 128, narrow channels (fast on CPU)."""
    return GeneratorConfig(
        size=32,
        style_dim=128,
        n_mlp=4,
        channel_multiplier=1,
        channels={4: 128, 8: 96, 16: 48, 32: 24},
    )


GENERATOR_PRESETS = {
    "demo": demo_generator_config,
    "tiny": GeneratorConfig.tiny,
    "ffhq256": GeneratorConfig.ffhq256,
    "ffhq1024": GeneratorConfig.ffhq1024,
}


@dataclass
class GANTrainConfig:
    data: str = "fashion-mnist:train"
    generator: dict[str, Any] = field(default_factory=lambda: demo_generator_config().to_dict())
    batch: int = 16
    steps: int = 10_000
    time_budget_s: float | None = None
    lr: float = 0.002
    r1: float = 0.1
    d_reg_every: int = 16
    mixing: float = 0.9
    ema_kimg: float = 1.0
    ema_rampup: float | None = 0.05
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 200
    sample_every: int = 250
    data_limit: int | None = None
    amp: bool = True
    fast_ops: bool = True

    @property
    def gen_cfg(self) -> GeneratorConfig:
        return GeneratorConfig.from_dict(self.generator)


def d_logistic_loss(real_pred: Tensor, fake_pred: Tensor) -> Tensor:
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: Tensor) -> Tensor:
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: Tensor, real_img: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def mixing_noise(batch: int, dim: int, prob: float, device: torch.device) -> list[Tensor]:
    if prob > 0 and torch.rand(()).item() < prob:
        return list(torch.randn(2, batch, dim, device=device).unbind(0))
    return [torch.randn(batch, dim, device=device)]


class GANTrainer(Resumable):
    """One StyleGAN2 training run (construct, optionally ``resume``, then ``train``)."""

    def __init__(
        self, cfg: GANTrainConfig, out: str | Path, device: str | None = None, dataset: Any = None
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.info = ddp.setup(device)
        ddp.seed_everything(cfg.seed, self.info.rank)
        dev = self.info.device
        gcfg = cfg.gen_cfg
        self.g = Generator(gcfg).to(dev)
        self.d = Discriminator(DiscriminatorConfig.matching(gcfg.channel_table, gcfg.size)).to(dev)
        if cfg.fast_ops:
            use_fast_ops(self.g)
            use_fast_ops(self.d)
        self.g_ema = copy.deepcopy(self.g).eval()
        if cfg.fast_ops:
            use_fast_ops(self.g_ema)
        requires_grad(self.g_ema, False)
        ratio = cfg.d_reg_every / (cfg.d_reg_every + 1)
        self.g_optim = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
        self.d_optim = torch.optim.Adam(
            self.d.parameters(), lr=cfg.lr * ratio, betas=(0.0, 0.99**ratio)
        )
        self.dataset = (
            dataset
            if dataset is not None
            else make_dataset(cfg.data, gcfg.size, limit=cfg.data_limit)
        )
        self.sampler = InfiniteSampler(
            len(self.dataset),
            cfg.batch,
            seed=cfg.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
        )
        self.step = 0
        self.wall_s = 0.0
        self.g_ddp = ddp.wrap(self.g, self.info)
        self.d_ddp = ddp.wrap(self.d, self.info)
        self.logger = RunLogger(self.out, enabled=self.info.is_main)
        self.amp = cfg.amp and dev.type == "cuda"
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        self.sample_z = torch.randn(64, gcfg.style_dim, generator=gen).to(dev)

    # -- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.cfg),
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "g_ema": self.g_ema.state_dict(),
            "g_optim": self.g_optim.state_dict(),
            "d_optim": self.d_optim.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": ddp.rng_state(),
            "step": self.step,
            "wall_s": self.wall_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.g_ema.load_state_dict(state["g_ema"])
        self.g_optim.load_state_dict(state["g_optim"])
        self.d_optim.load_state_dict(state["d_optim"])
        self.sampler.load_state_dict(state["sampler"])
        ddp.set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))

    # -- one step ----------------------------------------------------------------------

    def ema_decay(self) -> float:
        c = self.cfg
        nimg = self.step * c.batch * self.info.world_size
        ema_nimg = c.ema_kimg * 1000
        if c.ema_rampup is not None:
            ema_nimg = min(ema_nimg, max(nimg, 1) * c.ema_rampup)
        return 0.5 ** (c.batch * self.info.world_size / max(ema_nimg, 1e-8))

    def train_step(self, real: Tensor) -> dict[str, float]:
        c = self.cfg
        dev = self.info.device
        real = real.to(dev, non_blocking=True)
        b = real.shape[0]
        style_dim = self.g.style_dim
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)
        logs: dict[str, float] = {}

        # discriminator
        requires_grad(self.g, False)
        requires_grad(self.d, True)
        with autocast:
            fake, _ = self.g_ddp(mixing_noise(b, style_dim, c.mixing, dev))
            fake_pred = self.d_ddp(fake.detach())
            real_pred = self.d_ddp(real)
            d_loss = d_logistic_loss(real_pred.float(), fake_pred.float())
        self.d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optim.step()
        logs["d_loss"] = float(d_loss.detach())
        logs["real_score"] = float(real_pred.detach().float().mean())
        logs["fake_score"] = float(fake_pred.detach().float().mean())

        if c.r1 > 0 and self.step % c.d_reg_every == 0:
            real.requires_grad_(True)
            real_pred = self.d_ddp(real)
            r1 = r1_penalty(real_pred, real)
            self.d.zero_grad(set_to_none=True)
            (c.r1 / 2 * r1 * c.d_reg_every + 0 * real_pred[0, 0]).backward()
            self.d_optim.step()
            real.requires_grad_(False)
            logs["r1"] = float(r1.detach())

        # generator
        requires_grad(self.g, True)
        requires_grad(self.d, False)
        with autocast:
            fake, _ = self.g_ddp(mixing_noise(b, style_dim, c.mixing, dev))
            g_loss = g_nonsaturating_loss(self.d_ddp(fake).float())
        self.g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optim.step()
        logs["g_loss"] = float(g_loss.detach())

        ema_update(self.g_ema, self.g, self.ema_decay())
        self.step += 1
        return logs

    # -- outputs -----------------------------------------------------------------------

    @torch.no_grad()
    def export(self, path: Path | None = None, n_mean: int = 10_000) -> Path:
        """Write ``generator.pt`` (rosinality format: ``g_ema``, ``latent_avg``)."""
        path = path or self.out / "generator.pt"
        gen = torch.Generator(device=self.info.device).manual_seed(self.cfg.seed + 777)
        latent_avg = self.g_ema.mean_latent(n_mean, generator=gen)[0].cpu()
        if self.info.is_main:
            save_checkpoint(
                path,
                {
                    "g_ema": {k: v.cpu() for k, v in self.g_ema.state_dict().items()},
                    "latent_avg": latent_avg,
                    "config": self.cfg.generator,
                    "train": {
                        "step": self.step,
                        "wall_s": round(self.wall_s, 1),
                        "kimg": self.step * self.cfg.batch * self.info.world_size / 1000,
                    },
                },
            )
        return path

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        if not self.info.is_main:
            return
        from inversion.training.images import save_grid

        imgs, _ = self.g_ema([self.sample_z], randomize_noise=False)
        save_grid(imgs.cpu(), path, nrow=8)

    def train(self, progress: bool = True) -> dict[str, float]:
        c = self.cfg
        start = time.time()
        base_wall = self.wall_s
        last: dict[str, float] = {}
        bar = None
        if progress and self.info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=c.steps, initial=self.step, desc="generator", dynamic_ncols=True)
        while self.step < c.steps:
            if c.time_budget_s is not None and self.wall_s >= c.time_budget_s:
                break
            idx = self.sampler.next()
            real, _ = batch_from(self.dataset, idx)
            last = self.train_step(real)
            self.wall_s = base_wall + time.time() - start
            if bar is not None:
                bar.update(1)
                if self.step % 10 == 0:
                    bar.set_postfix(d=f"{last['d_loss']:.3f}", g=f"{last['g_loss']:.3f}")
            if self.step % c.log_every == 0:
                self.logger.log(self.step, **last, kimg=self.step * c.batch / 1000)
            if c.ckpt_every and self.step % c.ckpt_every == 0:
                self.save()
            if c.sample_every and self.step % c.sample_every == 0:
                self.save_samples(self.out / "samples" / f"{self.step:06d}.png")
        if bar is not None:
            bar.close()
        self.save()
        self.save_samples(self.out / "samples" / "final.png")
        self.export()
        self.logger.close()
        return last


# -- CLI -------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="fashion-mnist:train",
        help="fashion-mnist[:split] or an image folder / .zip",
    )
    p.add_argument("--out", required=True, type=Path, help="run directory")
    p.add_argument("--preset", default="demo", choices=sorted(GENERATOR_PRESETS))
    p.add_argument("--size", type=int, default=None, help="override the preset's size")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="stop (and export) after this many seconds of training",
    )
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--r1", type=float, default=0.1)
    p.add_argument("--mixing", type=float, default=0.9)
    p.add_argument("--ema-kimg", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--sample-every", type=int, default=250)
    p.add_argument("--data-limit", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--no-resume", action="store_true")


def run(args: argparse.Namespace) -> int:
    gcfg = GENERATOR_PRESETS[args.preset]()
    if args.size:
        gcfg = GeneratorConfig.from_dict({**gcfg.to_dict(), "size": args.size})
    cfg = GANTrainConfig(
        data=args.data,
        generator=gcfg.to_dict(),
        batch=args.batch,
        steps=args.steps,
        time_budget_s=args.time_budget,
        lr=args.lr,
        r1=args.r1,
        mixing=args.mixing,
        ema_kimg=args.ema_kimg,
        seed=args.seed,
        ckpt_every=args.ckpt_every,
        sample_every=args.sample_every,
        data_limit=args.data_limit,
        amp=not args.no_amp,
    )
    trainer = GANTrainer(cfg, args.out, device=args.device)
    if not args.no_resume and trainer.resume():
        print(f"resumed from step {trainer.step}")
    logs = trainer.train()
    if trainer.info.is_main:
        summary = {"step": trainer.step, "wall_s": round(trainer.wall_s, 1), **logs}
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
    ddp.cleanup()
    return 0
