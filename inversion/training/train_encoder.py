"""Encoder training: MambaStyle encoder + Fuser jointly (or the pSp baseline), one phase.

Every step has two parts, both through the frozen generator (rendered with its stored,
constant noise, exactly as the :class:`~inversion.inverter.Inverter` renders):

1. **Real reconstruction** on a batch of real images: the encoder predicts W+ offsets
   (added to ``latent_avg``) and a detail map; the generator renders with the Fuser's
   residual for d = 0. Losses: pixel MSE, multi-scale MSE (2x and 4x average-pooled),
   a W+ regulariser (mean squared offset from ``latent_avg``), and -- when the user
   supplies weights -- a perceptual loss and an identity loss (TorchScript modules, see
   :class:`PluggableLoss`).
2. **Edit consistency** on generated pairs: w ~ mapping(z), x = G(w); a known direction
   (from the directions file) with a random strength s gives the true edit
   x' = G(w + s d). The encoder inverts x to (w_hat, detail); the prediction
   G(w_hat + s d, residual = Fuser(s d, detail)) must match x' (pixel MSE, multi-scale)
   and its features at the Fuser's resolution must match the generator's own features
   of x' (feature consistency); w_hat is pulled towards w (latent loss), and x is
   reconstructed too (d = 0).

Stages (``--stage``, MambaStyle's losses that apply to 32 px product photos; each stage is
resumable from its own ``checkpoint.pt`` and starts from the previous stage's export or a
shipped bundle with ``--init-from``):

* ``recon``: real reconstruction only (pixel MSE, multi-scale MSE, the perceptual loss of
  ``train perceptual``, W-norm): the fidelity stage, cheapest per step.
* ``joint``: reconstruction plus the edit-consistency pairs (pixel, multi-scale and
  feature consistency at the Fuser's resolution, latent loss), at a lower learning rate,
  so the Fuser keeps carrying detail through edits.

``--arch psp`` trains the pSp baseline with the same loop, data, batch, steps and
losses (it has no detail map, hence no Fuser and no residual), so the comparison is
same-data, same-budget.
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
from torch import Tensor, nn

from inversion import registry
from inversion.training import ddp
from inversion.training.checkpoint import Resumable, requires_grad, save_checkpoint
from inversion.training.data import InfiniteSampler, batch_from, make_dataset
from inversion.training.fastconv import use_fast_ops
from inversion.training.logger import RunLogger

__all__ = [
    "EncoderTrainConfig",
    "EncoderTrainer",
    "STAGES",
    "config_from_args",
    "PluggableLoss",
    "demo_encoder_configs",
    "demo_psp_config",
    "load_encoder_export",
    "add_arguments",
    "run",
]


def demo_encoder_configs(gen_cfg: Any) -> tuple[Any, Any]:
    """(EncoderConfig, FuserConfig) for the 32 px demo generator (Fuser at 16 px)."""
    from inversion.modules.encoder import EncoderConfig
    from inversion.modules.fuser import FuserConfig
    from inversion.presets import align_configs

    enc = EncoderConfig(
        input_size=gen_cfg.size,
        n_latent=gen_cfg.n_latent,
        style_dim=gen_cfg.style_dim,
        stem_channels=16,
        body_channels=[16, 32, 64, 96],
        body_units=[1, 1, 2, 1],
        fpn_channels=[32, 64, 96],
        d_state=8,
        head_pool=2,
        detail_channels=16,
    )
    res = 16 if 16 in gen_cfg.resolutions else gen_cfg.resolutions[-2]
    fus = FuserConfig(resolution=res, token_dim=32, seed_size=4, hidden_channels=32, d_state=8)
    return align_configs(gen_cfg, enc, fus)


def demo_psp_config(gen_cfg: Any) -> Any:
    """pSp scaled to the demo generator: same IR-SE body widths, pSp's 3/7-of-18 split."""
    from inversion.baselines.psp import PSPConfig

    n = gen_cfg.n_latent
    return PSPConfig(
        input_size=gen_cfg.size,
        n_latent=n,
        style_dim=gen_cfg.style_dim,
        body_channels=[16, 32, 64, gen_cfg.style_dim],
        body_units=[1, 1, 2, 1],
        coarse=max(1, round(n * 3 / 18)) + 1,
        middle=max(2, round(n * 7 / 18)) + 2,
    )


# architecture -> (encoder config, fuser config or None) scaled to a demo generator
DEMO_CONFIGS = {
    "mambastyle": demo_encoder_configs,
    "psp": lambda gen_cfg: (demo_psp_config(gen_cfg), None),
}


class PluggableLoss(nn.Module):
    """A user-supplied TorchScript loss: perceptual (``f(x, y) -> scalar``) or identity
    (``f(x) -> embeddings``; loss = 1 - cosine similarity). Images are in [-1, 1]."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__()
        if kind not in ("perceptual", "identity"):
            raise ValueError("kind must be perceptual or identity")
        self.kind = kind
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        requires_grad(self.net, False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.kind == "perceptual":
            return self.net(x, y).mean()
        ex, ey = self.net(x), self.net(y)
        return (1 - F.cosine_similarity(ex.flatten(1), ey.flatten(1), dim=1)).mean()


@dataclass
class EncoderTrainConfig:
    arch: str = registry.DEFAULT_ARCH
    generator: str = ""
    directions: str | None = None
    data: str = "fashion-mnist:train"
    encoder: dict[str, Any] = field(default_factory=dict)
    fuser: dict[str, Any] | None = None
    batch: int = 16
    gen_batch: int = 8
    steps: int = 2000
    time_budget_s: float | None = None
    # decay the learning rate over the time budget when it ends before ``steps`` (a run
    # on hardware whose speed is not known beforehand, e.g. a lent GPU)
    decay_by_time: bool = False
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_strength: float = 3.0
    w_mse: float = 1.0
    w_multiscale: float = 0.5
    w_feat: float = 0.5
    w_latent: float = 0.05
    w_wnorm: float = 1e-3
    w_edit: float = 1.0
    w_perceptual: float = 0.0
    w_identity: float = 0.0
    perceptual: str | None = None
    identity: str | None = None
    seed: int = 0
    log_every: int = 25
    ckpt_every: int = 200
    data_limit: int | None = None
    fast_ops: bool = True
    stage: str | None = None
    init_from: str | None = None
    warmup: int = 50


# --stage presets: EncoderTrainConfig fields they set (command-line values not given win)
STAGES: dict[str, dict[str, Any]] = {
    "recon": {
        "gen_batch": 0,
        "batch": 32,
        "lr": 3e-4,
        "w_multiscale": 1.0,
        "w_perceptual": 0.05,
        "w_wnorm": 1e-4,
    },
    "joint": {
        "gen_batch": 8,
        "batch": 24,
        "lr": 1e-4,
        "w_multiscale": 1.0,
        "w_perceptual": 0.05,
        "w_wnorm": 1e-4,
        "w_feat": 0.5,
        "w_edit": 1.0,
    },
}


def multiscale_mse(x: Tensor, y: Tensor) -> Tensor:
    loss = x.new_zeros(())
    for k in (2, 4):
        if x.shape[-1] // k >= 4:
            loss = loss + F.mse_loss(F.avg_pool2d(x, k), F.avg_pool2d(y, k))
    return loss


class EncoderTrainer(Resumable):
    def __init__(
        self,
        cfg: EncoderTrainConfig,
        out: str | Path,
        device: str | None = None,
        dataset: Any = None,
        generator: tuple[nn.Module, Tensor] | None = None,
        directions: dict[str, Tensor] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.info = ddp.setup(device)
        ddp.seed_everything(cfg.seed, self.info.rank)
        dev = self.info.device
        g, avg = generator if generator is not None else _load_generator(cfg.generator, dev)
        self.g = copy.deepcopy(g).to(dev).eval()
        requires_grad(self.g, False)
        if cfg.fast_ops:
            use_fast_ops(self.g)
        self.latent_avg = avg.to(dev).reshape(1, 1, -1)
        gen_cfg = self.g.cfg
        arch = registry.get(cfg.arch)
        if not cfg.encoder and cfg.init_from and Path(cfg.init_from).is_dir():
            from inversion.bundle import load_bundle

            b = load_bundle(cfg.init_from)  # the architecture the weights belong to
            cfg.encoder = b.encoder_config.to_dict()
            cfg.fuser = b.fuser_config.to_dict() if b.fuser_config is not None else None
        if not cfg.encoder:
            e, f = DEMO_CONFIGS[arch.name](gen_cfg)
            cfg.encoder, cfg.fuser = e.to_dict(), f.to_dict() if f is not None else None
        self.enc_cfg = arch.config_from_dict(cfg.encoder)
        self.encoder = arch.build(self.enc_cfg).to(dev)
        self.fuser: nn.Module | None = None
        self.fus_cfg = None
        if arch.fuser is not None and cfg.fuser is not None:
            self.fus_cfg = arch.fuser.config_from_dict(cfg.fuser)
            self.fuser = arch.fuser.build(self.fus_cfg).to(dev)
        if cfg.init_from:
            self._init_weights(cfg.init_from)
        params = list(self.encoder.parameters()) + (
            list(self.fuser.parameters()) if self.fuser is not None else []
        )
        self.optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.optim, self._lr_lambda)
        if directions is None and cfg.directions:
            from inversion.editing.directions import load_directions

            directions = load_directions(cfg.directions)
        dirs = {k: v for k, v in (directions or {}).items() if v.ndim == 1}
        self.dir_names = sorted(dirs)
        self.dir_stack = torch.stack([dirs[k] for k in self.dir_names]).to(dev) if dirs else None
        self.dataset = (
            dataset
            if dataset is not None
            else make_dataset(cfg.data, gen_cfg.size, limit=cfg.data_limit)
        )
        self.sampler = InfiniteSampler(
            len(self.dataset),
            cfg.batch,
            seed=cfg.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
        )
        self.enc_ddp = ddp.wrap(self.encoder, self.info)
        self.fuser_ddp = ddp.wrap(self.fuser, self.info) if self.fuser is not None else None
        self.extra: dict[str, PluggableLoss] = {}
        if cfg.perceptual and cfg.w_perceptual > 0:
            self.extra["perceptual"] = PluggableLoss(cfg.perceptual, "perceptual").to(dev)
        if cfg.identity and cfg.w_identity > 0:
            self.extra["identity"] = PluggableLoss(cfg.identity, "identity").to(dev)
        self.step = 0
        self.wall_s = 0.0
        self.logger = RunLogger(self.out, enabled=self.info.is_main)

    def _init_weights(self, path: str) -> None:
        """Start from a shipped bundle's (or an earlier stage's) encoder and Fuser weights."""
        src = Path(path)
        if src.is_dir():
            from inversion.bundle import load_bundle

            b = load_bundle(src)
            if b.encoder_arch != self.cfg.arch:
                raise ValueError(f"{src}: encoder is {b.encoder_arch}, not {self.cfg.arch}")
            enc_sd, fus_sd = b.state_dicts["encoder"], b.state_dicts.get("fuser")
        else:
            ck = torch.load(src, map_location="cpu", weights_only=False)
            if ck["arch"] != self.cfg.arch:
                raise ValueError(f"{src}: encoder is {ck['arch']}, not {self.cfg.arch}")
            enc_sd, fus_sd = ck["encoder"], ck.get("fuser")
        self.encoder.load_state_dict(enc_sd)
        if self.fuser is not None and fus_sd is not None:
            self.fuser.load_state_dict(fus_sd)

    def _lr_lambda(self, step: int) -> float:
        warm = self.cfg.warmup
        if step < warm:
            return (step + 1) / warm
        frac = min(1.0, step / max(1, self.cfg.steps))
        if self.cfg.decay_by_time and self.cfg.time_budget_s:
            frac = max(frac, min(1.0, self.wall_s / self.cfg.time_budget_s))
        return 0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(frac * torch.pi)).item())

    # -- model pieces --------------------------------------------------------------------

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        size = self.enc_cfg.input_size
        if x.shape[-1] != size:
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        out = self.enc_ddp(x)
        return out.wplus + self.latent_avg, out.detail

    def render(
        self,
        wplus: Tensor,
        detail: Tensor | None,
        delta: Tensor | None,
        features: int | None = None,
    ) -> Any:
        residual = None
        if self.fuser_ddp is not None and detail is not None:
            d = delta if delta is not None else torch.zeros_like(wplus)
            residual = {self.fus_cfg.resolution: self.fuser_ddp(d, detail)}
        return self.g.synthesis(
            wplus, noise="const", feature_residual=residual, return_features=features
        )

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.cfg),
            "encoder": self.encoder.state_dict(),
            "fuser": self.fuser.state_dict() if self.fuser is not None else None,
            "optim": self.optim.state_dict(),
            "sched": self.sched.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": ddp.rng_state(),
            "step": self.step,
            "wall_s": self.wall_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        if self.fuser is not None:
            self.fuser.load_state_dict(state["fuser"])
        self.optim.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.sampler.load_state_dict(state["sampler"])
        ddp.set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))

    def export(self, path: Path | None = None) -> Path:
        path = path or self.out / "encoder.pt"
        if self.info.is_main:
            save_checkpoint(
                path,
                {
                    "arch": self.cfg.arch,
                    "encoder_config": self.enc_cfg.to_dict(),
                    "encoder": {k: v.cpu() for k, v in self.encoder.state_dict().items()},
                    "fuser_config": self.fus_cfg.to_dict() if self.fus_cfg is not None else None,
                    "fuser": (
                        {k: v.cpu() for k, v in self.fuser.state_dict().items()}
                        if self.fuser is not None
                        else None
                    ),
                    "train": {
                        "step": self.step,
                        "wall_s": round(self.wall_s, 1),
                        "batch": self.cfg.batch,
                        "gen_batch": self.cfg.gen_batch,
                        "images_seen": self.step * (self.cfg.batch + self.cfg.gen_batch),
                        "stage": self.cfg.stage,
                        "init_from": self.cfg.init_from,
                    },
                },
            )
        return path

    # -- one step ------------------------------------------------------------------------

    def losses(self, real: Tensor) -> dict[str, Tensor]:
        c = self.cfg
        dev = self.info.device
        out: dict[str, Tensor] = {}
        wplus, detail = self.encode(real)
        rec = self.render(wplus, detail, None)
        out["mse"] = F.mse_loss(rec, real)
        out["multiscale"] = multiscale_mse(rec, real)
        out["wnorm"] = (wplus - self.latent_avg).pow(2).mean()
        for name, fn in self.extra.items():
            out[name] = fn(rec, real)
        total = c.w_mse * out["mse"] + c.w_multiscale * out["multiscale"] + c.w_wnorm * out["wnorm"]
        total = total + sum(getattr(c, f"w_{n}") * out[n] for n in self.extra)

        if c.gen_batch > 0:
            nb = c.gen_batch
            with torch.no_grad():
                z = torch.randn(nb, self.g.style_dim, device=dev)
                w = self.g.get_latent(z).unsqueeze(1).repeat(1, self.g.n_latent, 1)
                x = self.g.synthesis(w, noise="const")
                delta = torch.zeros_like(w)
                if self.dir_stack is not None:
                    k = torch.randint(len(self.dir_names), (nb,), device=dev)
                    s = (torch.rand(nb, device=dev) * 2 - 1) * c.max_strength
                    delta = (s[:, None] * self.dir_stack[k]).unsqueeze(1).expand_as(w)
                    delta = delta.contiguous()
                res = self.fus_cfg.resolution if self.fus_cfg is not None else None
                target = self.g.synthesis(w + delta, noise="const", return_features=res)
            w_hat, det = self.encode(x)
            rec_g = self.render(w_hat, det, None)
            out["gen_mse"] = F.mse_loss(rec_g, x)
            out["latent"] = F.mse_loss(w_hat, w)
            total = total + c.w_mse * out["gen_mse"] + c.w_latent * out["latent"]
            if self.dir_stack is not None:
                pred = self.render(w_hat + delta, det, delta, features=res)
                if res is not None:
                    pred_img, pred_feat = pred
                    tgt_img, tgt_feat = target
                    out["feat"] = F.mse_loss(pred_feat, tgt_feat)
                    total = total + c.w_feat * out["feat"]
                else:
                    pred_img, tgt_img = pred, target
                out["edit_mse"] = F.mse_loss(pred_img, tgt_img)
                out["edit_multiscale"] = multiscale_mse(pred_img, tgt_img)
                total = total + c.w_edit * (
                    out["edit_mse"] + c.w_multiscale * out["edit_multiscale"]
                )
        out["total"] = total
        return out

    def train_step(self, real: Tensor) -> dict[str, float]:
        self._train_mode()
        losses = self.losses(real.to(self.info.device))
        self.optimiser_step(losses["total"])
        return {k: float(v.detach()) for k, v in losses.items()}

    def _train_mode(self) -> None:
        self.encoder.train()
        if self.fuser is not None:
            self.fuser.train()

    def optimiser_step(self, total: Tensor) -> None:
        """One update of every parameter group: backward, :meth:`_reduce_extra_grads`,
        clip the global norm at 5, step the optimiser and the schedule, count the step.
        Shared with subclasses (``train adapt``) so both train with the same rule."""
        self.optim.zero_grad(set_to_none=True)
        total.backward()
        self._reduce_extra_grads()
        params = [p for grp in self.optim.param_groups for p in grp["params"]]
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        self.optim.step()
        self.sched.step()
        self.step += 1

    def _reduce_extra_grads(self) -> None:
        """Hook: average gradients of parameters outside the DDP-wrapped modules (none
        here: the encoder and the Fuser are wrapped)."""

    def train(self, progress: bool = True) -> dict[str, float]:
        c = self.cfg
        start = time.time()
        base = self.wall_s
        last: dict[str, float] = {}
        bar = None
        if progress and self.info.is_main:
            from tqdm import tqdm

            bar = tqdm(
                total=c.steps, initial=self.step, desc=f"encoder[{c.arch}]", dynamic_ncols=True
            )
        while self.step < c.steps:
            if c.time_budget_s is not None and self.wall_s >= c.time_budget_s:
                break
            real, _ = batch_from(self.dataset, self.sampler.next())
            last = self.train_step(real)
            self.wall_s = base + time.time() - start
            if bar is not None:
                bar.update(1)
                if self.step % 10 == 0:
                    bar.set_postfix(mse=f"{last['mse']:.4f}", tot=f"{last['total']:.3f}")
            if self.step % c.log_every == 0:
                self.logger.log(self.step, **last, lr=self.optim.param_groups[0]["lr"])
            if c.ckpt_every and self.step % c.ckpt_every == 0:
                self.save()
        if bar is not None:
            bar.close()
        self.save()
        self.export()
        self.logger.close()
        return last

    def n_parameters(self) -> dict[str, int]:
        n_enc = sum(p.numel() for p in self.encoder.parameters())
        n_fus = sum(p.numel() for p in self.fuser.parameters()) if self.fuser is not None else 0
        return {"encoder": n_enc, "fuser": n_fus, "total": n_enc + n_fus}


def _load_generator(path: str | Path, device: Any) -> tuple[nn.Module, Tensor]:
    """(generator, latent_avg) from ``generator.pt`` or from a bundle directory."""
    from inversion.training.directions import load_generator

    if Path(path).is_dir():
        from inversion.bundle import load_bundle

        b = load_bundle(path)
        return b.build_generator(device), b.latent_avg.to(device)
    return load_generator(path, device)


def load_encoder_export(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[str, nn.Module, nn.Module | None, Any, Any]:
    """(arch, encoder, fuser | None, encoder_cfg, fuser_cfg | None) from ``encoder.pt``."""
    ck = torch.load(path, map_location=device, weights_only=False)
    arch = registry.get(ck["arch"])
    ecfg = arch.config_from_dict(ck["encoder_config"])
    enc = arch.build(ecfg).to(device)
    enc.load_state_dict(ck["encoder"])
    fus, fcfg = None, None
    if arch.fuser is not None and ck.get("fuser") is not None:
        fcfg = arch.fuser.config_from_dict(ck["fuser_config"])
        fus = arch.fuser.build(fcfg).to(device)
        fus.load_state_dict(ck["fuser"])
        fus.eval()
    return arch.name, enc.eval(), fus, ecfg, fcfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=registry.DEFAULT_ARCH, choices=registry.names())
    p.add_argument(
        "--generator", required=True, type=Path, help="generator.pt, or a bundle directory"
    )
    p.add_argument(
        "--stage",
        choices=sorted(STAGES),
        default=None,
        help="a preset of losses, batch and learning rate (module docstring); explicit "
        "options override it",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start from these encoder/Fuser weights: a bundle directory or an encoder.pt "
        "export (ignored when resuming)",
    )
    p.add_argument("--ckpt-every", type=int, default=200, help="checkpoint every N steps")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--warmup", type=int, default=50, help="linear learning-rate warm-up steps")
    p.add_argument(
        "--decay-by-time",
        action="store_true",
        help="with --time-budget: decay the learning rate over the budget when it ends "
        "before --steps (hardware of unknown speed)",
    )
    p.add_argument(
        "--directions",
        type=Path,
        default=None,
        help="directions file for edit consistency (e.g. directions.safetensors)",
    )
    p.add_argument("--data", default="fashion-mnist:train")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--batch", type=int, default=None, help="default 16 (or the stage's)")
    p.add_argument("--gen-batch", type=int, default=None, help="default 8 (or the stage's)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="stop after this many seconds of training in total (resumed runs included)",
    )
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (or the stage's)")
    p.add_argument("--max-strength", type=float, default=3.0)
    p.add_argument(
        "--perceptual",
        default=None,
        help="TorchScript perceptual loss f(x, y) (user-supplied weights)",
    )
    p.add_argument("--w-perceptual", type=float, default=None)
    p.add_argument(
        "--identity",
        default=None,
        help="TorchScript identity embedder f(x) (user-supplied weights)",
    )
    p.add_argument("--w-identity", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-limit", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <out>/checkpoint.pt (the default; the flag states it)",
    )
    p.add_argument("--no-resume", action="store_true")


def config_from_args(args: argparse.Namespace) -> EncoderTrainConfig:
    """The run's config: defaults, then the ``--stage`` preset, then explicit options."""
    preset = dict(STAGES[args.stage]) if args.stage else {}
    if preset and not args.perceptual:
        preset.pop("w_perceptual", None)  # no network given: the stage runs without it
    explicit = {
        "batch": args.batch,
        "gen_batch": args.gen_batch,
        "lr": args.lr,
        "w_perceptual": args.w_perceptual,
    }
    values = {**preset, **{k: v for k, v in explicit.items() if v is not None}}
    cfg = EncoderTrainConfig(
        arch=args.arch,
        generator=str(args.generator),
        directions=str(args.directions) if args.directions else None,
        data=args.data,
        steps=args.steps,
        time_budget_s=args.time_budget,
        max_strength=args.max_strength,
        perceptual=args.perceptual,
        identity=args.identity,
        w_identity=args.w_identity,
        seed=args.seed,
        data_limit=args.data_limit,
        stage=args.stage,
        init_from=str(args.init_from) if args.init_from else None,
        ckpt_every=args.ckpt_every,
        log_every=args.log_every,
        warmup=args.warmup,
        decay_by_time=args.decay_by_time,
    )
    for k, v in values.items():
        setattr(cfg, k, v)
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    resuming = not args.no_resume and (Path(args.out) / "checkpoint.pt").exists()
    if resuming:
        cfg.init_from = None  # the checkpoint holds the weights (and their architecture)
        saved = torch.load(Path(args.out) / "checkpoint.pt", map_location="cpu", weights_only=False)
        cfg.encoder, cfg.fuser = saved["config"]["encoder"], saved["config"]["fuser"]
    trainer = EncoderTrainer(cfg, args.out, device=args.device)
    if resuming and trainer.resume():
        print(f"resumed from step {trainer.step}")
    logs = trainer.train()
    if trainer.info.is_main:
        summary = {
            "arch": args.arch,
            "step": trainer.step,
            "wall_s": round(trainer.wall_s, 1),
            "parameters": trainer.n_parameters(),
            **logs,
        }
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
    ddp.cleanup()
    return 0
