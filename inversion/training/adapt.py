"""Domain adaptation: fine-tune a bundle's encoder + Fuser (optionally its generator) on
an unlabelled folder of the company's own photos, and write a new bundle.

Why: the proof of concept (:mod:`inversion.poc`) measures the gap between a model's
domain and a company's photos; adaptation closes it with data, and the result is a new,
traceable model version -- never a silent change of the old one.

``python -m inversion train adapt --bundle B --photos DIR --out NEWBUNDLE [--steps N]
[--resume] [--tune-generator --max-forgetting-db X]``

* The photos are aligned as jobs align them (the parent's declared domain), sorted by
  name and split: the last ``--holdout`` share is held out for the before/after
  figures, the share before it calibrates the new domain gate, the rest trains.
* Training is :class:`~inversion.training.train_encoder.EncoderTrainer`'s step
  (reconstruction of real photos + edit consistency on generated pairs along the
  bundle's directions, so edits keep working), started from the bundle's weights with a
  fine-tuning learning rate. ``--replay N`` mixes N images of the original training
  data into the photo set. ``--tune-generator`` also trains the generator's synthesis
  layers (the mapping network stays frozen, so the directions keep their meaning).
* **Forgetting guard**: every ``--guard-every`` steps the reconstruction PSNR on a fixed
  original-domain reference (Fashion-MNIST ``val[4750:5000]``, never trained on) is
  measured; a drop of more than ``--max-forgetting-db`` below the parent's stops the run
  and rolls the weights back to the last state that passed. If no state after the
  parent passed, the command refuses (:class:`ForgettingGuardError`) and writes nothing.
* The new bundle's manifest records the parent version, every photo's SHA-256 (by
  split), the training settings, the guard's history and the before/after PoC figures on
  the held-out photos. Its domain gate is recalibrated for the adapted encoder on the
  original-domain reference plus the company's photos (the adapted model's domain is
  both).
* Progress bars (tqdm), resumable (``--resume`` continues from ``NEWBUNDLE.run/``
  bit for bit; a checkpoint of other photos or another parent is refused), and
  DDP-ready like the other training steps (``torchrun ... -m inversion train adapt``:
  encoder and Fuser are DistributedDataParallel-wrapped, generator gradients are
  all-reduced, the sampler shards the photos, rank 0 writes).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from inversion.errors import InversionError
from inversion.training import ddp
from inversion.training.checkpoint import requires_grad
from inversion.training.train_encoder import EncoderTrainConfig, EncoderTrainer

__all__ = [
    "AdaptConfig",
    "AdaptError",
    "ForgettingGuardError",
    "AdaptTrainer",
    "PhotoSplit",
    "split_photos",
    "reference_images",
    "adapt",
    "add_arguments",
    "run",
]

# original-domain reference (never trained on by the demo): gate fit / gate calibration /
# forgetting guard, disjoint slices of Fashion-MNIST's val split
REFERENCE_GATE_FIT = (4000, 4500)
REFERENCE_GATE_CALIB = (4500, 4750)
REFERENCE_GUARD = (4750, 5000)


class AdaptError(InversionError, ValueError):
    """The adaptation cannot run with these inputs (photos, parent, checkpoint)."""


class ForgettingGuardError(AdaptError):
    """Every adapted state forgot too much of the original domain: nothing is written."""


@dataclass
class AdaptConfig(EncoderTrainConfig):
    bundle: str = ""
    photos: str = ""
    steps: int = 300
    lr: float = 2e-4
    batch: int = 16
    gen_batch: int = 4
    tune_generator: bool = False
    g_lr: float = 5e-5
    max_forgetting_db: float = 1.0
    guard_every: int = 50
    guard_n: int = 250
    holdout: float = 0.1
    replay: int = 0
    gate_fit: int = 2000
    gate_reference_fit: int = 500
    gate_reference_calib: int = 250
    ckpt_every: int = 50
    data_sha256: str = ""
    parent_version: str = ""
    notes: list[str] = field(default_factory=list)


# -- photos --------------------------------------------------------------------------


@dataclass
class PhotoSplit:
    """The aligned photos by role, with each file's SHA-256."""

    train: Tensor
    calib: Tensor
    holdout_paths: list[Path]
    hashes: dict[str, dict[str, str]]  # split -> {name: sha256}
    skipped: list[dict[str, str]]

    @property
    def sha256(self) -> str:
        """One hash of the whole set (names, roles and contents)."""
        text = json.dumps(self.hashes, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def split_photos(folder: str | Path, domain: Any, size: int, holdout: float) -> PhotoSplit:
    """Align every photo as a job would; split sorted names into train / calib / holdout."""
    from inversion.poc import list_photos, load_photos, sha256_file
    from inversion.preprocess import image_to_tensor

    if not 0 < holdout < 0.5:
        raise AdaptError(f"--holdout must be in (0, 0.5), got {holdout}")
    paths = list_photos(folder)
    crops, names, skipped = load_photos(paths, domain)
    if len(crops) < 3:
        raise AdaptError(
            f"{str(folder)!r}: {len(crops)} usable photos; adaptation needs at least 3 "
            "(train, gate calibration, held out)"
        )
    by_name = {p.name: p for p in paths}
    k = max(1, round(holdout * len(crops)))
    n_train = len(crops) - 2 * k
    if n_train < 1:
        raise AdaptError(f"--holdout {holdout} leaves no photos to train on")
    x = image_to_tensor(crops, size)
    roles = ["train"] * n_train + ["calib"] * k + ["holdout"] * k
    hashes: dict[str, dict[str, str]] = {"train": {}, "calib": {}, "holdout": {}}
    for name, role in zip(names, roles, strict=True):
        hashes[role][name] = sha256_file(by_name[name])
    return PhotoSplit(
        train=x[:n_train],
        calib=x[n_train : n_train + k],
        holdout_paths=[by_name[n] for n in names[n_train + k :]],
        hashes=hashes,
        skipped=skipped,
    )


def reference_images(span: tuple[int, int], size: int) -> Tensor:
    """Fashion-MNIST ``val[a:b]`` at the model's size: the original domain."""
    from inversion.training.data import load_fashion_mnist

    x, _ = load_fashion_mnist("val", size=size, limit=span[1])
    return x[span[0] :]


# -- the trainer ---------------------------------------------------------------------


class AdaptTrainer(EncoderTrainer):
    """EncoderTrainer started from a bundle, with an optional generator and the guard."""

    def __init__(
        self,
        cfg: AdaptConfig,
        run_dir: str | Path,
        bundle: Any,
        photos: Tensor,
        reference: Tensor,
        replay: Tensor | None = None,
        device: str | None = None,
    ) -> None:
        from inversion.training.data import TensorImageDataset

        cfg.encoder = bundle.encoder_config.to_dict()
        cfg.fuser = bundle.fuser_config.to_dict() if bundle.fuser_config is not None else None
        cfg.arch = bundle.encoder_arch
        data = photos if replay is None else torch.cat([photos, replay])
        super().__init__(
            cfg,
            run_dir,
            device=device,
            dataset=TensorImageDataset(data, name=cfg.photos),
            generator=(bundle.build_generator(), bundle.latent_avg),
            directions=bundle.directions,
        )
        self.encoder.load_state_dict(bundle.state_dicts["encoder"])
        if self.fuser is not None:
            self.fuser.load_state_dict(bundle.state_dicts["fuser"])
        groups = [
            {
                "params": list(self.encoder.parameters())
                + (list(self.fuser.parameters()) if self.fuser is not None else []),
                "lr": cfg.lr,
            }
        ]
        self.g_params: list[torch.nn.Parameter] = []
        if cfg.tune_generator:
            requires_grad(self.g, True)
            requires_grad(self.g.style, False)  # the mapping: directions keep their meaning
            self.g_params = [p for p in self.g.parameters() if p.requires_grad]
            groups.append({"params": self.g_params, "lr": cfg.g_lr, "weight_decay": 0.0})
        self.optim = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.optim, self._lr_lambda)
        self.reference = reference.to(self.info.device)
        self.guard: dict[str, Any] = {
            "base_psnr": self.reference_psnr(),
            "max_drop_db": cfg.max_forgetting_db,
            "history": [],
            "stopped": None,
        }
        self.good = self._snapshot(self.guard["base_psnr"])

    def _lr_lambda(self, step: int) -> float:
        warm = min(20, max(1, self.cfg.steps // 10))
        if step < warm:
            return (step + 1) / warm
        frac = min(1.0, step / max(1, self.cfg.steps))
        return 0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(frac * torch.pi)).item())

    # -- guard ---------------------------------------------------------------------------

    @torch.no_grad()
    def reference_psnr(self) -> float:
        """Mean reconstruction PSNR (dB) on the original-domain reference."""
        from inversion.evaluate import recon_metrics

        self.encoder.eval()
        if self.fuser is not None:
            self.fuser.eval()
        out = []
        for i in range(0, self.reference.shape[0], 125):
            x = self.reference[i : i + 125]
            w, det = self.encode(x)
            out.append(recon_metrics(self.render(w, det, None), x)["psnr"])
        return float(torch.cat(out).mean())

    def _snapshot(self, psnr: float) -> dict[str, Any]:
        return {
            "step": self.step,
            "psnr": psnr,
            "encoder": copy.deepcopy(self.encoder.state_dict()),
            "fuser": copy.deepcopy(self.fuser.state_dict()) if self.fuser is not None else None,
            "generator": copy.deepcopy(self.g.state_dict()) if self.g_params else None,
        }

    def _restore(self, snap: dict[str, Any]) -> None:
        self.encoder.load_state_dict(snap["encoder"])
        if self.fuser is not None:
            self.fuser.load_state_dict(snap["fuser"])
        if snap["generator"] is not None:
            self.g.load_state_dict(snap["generator"])

    def check_guard(self) -> bool:
        """Measure; keep a snapshot when it passes, roll back and return False when not."""
        psnr = self.reference_psnr()
        drop = self.guard["base_psnr"] - psnr
        ok = drop <= self.cfg.max_forgetting_db
        self.guard["history"].append(
            {
                "step": self.step,
                "reference_psnr": round(psnr, 4),
                "drop_db": round(drop, 4),
                "passed": ok,
            }
        )
        if ok:
            self.good = self._snapshot(psnr)
            return True
        self.guard["stopped"] = {
            "step": self.step,
            "drop_db": round(drop, 4),
            "rolled_back_to": self.good["step"],
        }
        self._restore(self.good)
        return False

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["generator"] = self.g.state_dict() if self.g_params else None
        state["guard"] = self.guard
        state["good"] = self.good
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        cfg = state["config"]
        for key in ("parent_version", "data_sha256", "tune_generator"):
            if cfg.get(key) != getattr(self.cfg, key):
                raise AdaptError(
                    f"the checkpoint in {str(self.out)!r} was made with another {key} "
                    f"({cfg.get(key)!r}, now {getattr(self.cfg, key)!r}); start without "
                    "--resume or use another --out"
                )
        super().load_state_dict(state)
        if state.get("generator") is not None:
            self.g.load_state_dict(state["generator"])
        self.guard = state["guard"]
        self.good = state["good"]

    # -- one step ------------------------------------------------------------------------

    def _train_mode(self) -> None:
        """Train mode with batch-norm statistics frozen: the parent's running statistics
        describe the original domain, and updating them on the photos alone shifts every
        original-domain reconstruction (the guard measures that within a few steps)."""
        for m in (self.encoder, self.fuser):
            if m is None:
                continue
            m.train()
            for sub in m.modules():
                if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                    sub.eval()

    def _reduce_extra_grads(self) -> None:
        """The generator is not DDP-wrapped: average its gradients across ranks (the
        rest of the step is :meth:`EncoderTrainer.optimiser_step`)."""
        if self.g_params and self.info.distributed:
            for p in self.g_params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.info.world_size

    def train(self, progress: bool = True) -> dict[str, float]:
        from inversion.training.data import batch_from

        c = self.cfg
        start, base = time.time(), self.wall_s
        last: dict[str, float] = {}
        bar = None
        if progress and self.info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=c.steps, initial=self.step, desc="adapt", dynamic_ncols=True)
        while self.step < c.steps and self.guard["stopped"] is None:
            if c.time_budget_s is not None and self.wall_s >= c.time_budget_s:
                break
            real, _ = batch_from(self.dataset, self.sampler.next())
            last = self.train_step(real)
            self.wall_s = base + time.time() - start
            if bar is not None:
                bar.update(1)
                bar.set_postfix(mse=f"{last['mse']:.4f}")
            if self.step % c.log_every == 0:
                self.logger.log(self.step, **last, lr=self.optim.param_groups[0]["lr"])
            if c.guard_every and self.step % c.guard_every == 0:
                self.check_guard()
                if bar is not None:
                    bar.set_postfix(
                        mse=f"{last['mse']:.4f}",
                        ref_drop=f"{self.guard['history'][-1]['drop_db']:+.2f}dB",
                    )
            if c.ckpt_every and self.step % c.ckpt_every == 0:
                self.save()
        if self.guard["stopped"] is None and (
            not self.guard["history"] or self.guard["history"][-1]["step"] != self.step
        ):
            self.check_guard()
        if bar is not None:
            bar.close()
        self.save()
        self.logger.close()
        return last


# -- the whole command ---------------------------------------------------------------


def _summary(fig: dict[str, Any]) -> dict[str, Any]:
    g = fig["domain_gate"]
    return {
        "bundle_version": fig["bundle"]["version"],
        "n": fig["reconstruction"]["n"],
        "psnr": round(fig["reconstruction"]["psnr"], 4),
        "ssim": round(fig["reconstruction"]["ssim"], 4),
        "psnr_median": round(fig["reconstruction"]["psnr_distribution"]["median"], 4),
        "gate_pass_rate": g.get("pass_rate"),
        "gate_declared": bool(g.get("declared")),
        "job_s_per_image": round(fig["speed"]["job_s_per_image"], 6),
    }


def _calibrate_gate(inverter: Any, domain: Any, split: PhotoSplit, cfg: AdaptConfig) -> Any:
    """A gate for the adapted model: the original reference plus the company's photos."""
    from inversion.domain import DomainGate

    size = inverter.output_size
    a, b = REFERENCE_GATE_FIT
    ref_fit = reference_images((a, min(b, a + cfg.gate_reference_fit)), size)
    a, b = REFERENCE_GATE_CALIB
    ref_cal = reference_images((a, min(b, a + cfg.gate_reference_calib)), size)
    fit = torch.cat([ref_fit, split.train[: cfg.gate_fit]])
    cal = torch.cat([ref_cal, split.calib])
    fit_inv = inverter.invert(fit)
    cal_inv = inverter.invert(cal)
    return DomainGate.calibrate(
        fit_inv.wplus,
        cal_inv.wplus,
        calib_reconstruction=cal_inv.reconstruction,
        calib_target=cal,
        quantile=0.99,
        domain=domain.description or domain.subject,
        calibration=(
            f"fashion-mnist:val[{a}:{a + ref_cal.shape[0]}] + "
            f"{split.calib.shape[0]} held-out adaptation photos"
        ),
    )


def _update_manifest(root: Path, update: Any) -> None:
    """Rewrite ``manifest.json`` in place (atomically); the weights are untouched."""
    from inversion.bundle import MANIFEST_NAME

    manifest = json.loads((root / MANIFEST_NAME).read_text())
    update(manifest)
    tmp = root / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, root / MANIFEST_NAME)


def adapt(
    cfg: AdaptConfig,
    out: str | Path,
    *,
    resume: bool = False,
    run_dir: str | Path | None = None,
    device: str | None = None,
    classifier: str | Path | None = None,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the adaptation and write the new bundle at ``out``; returns its summary."""
    from inversion.bundle import build_bundle, load_bundle
    from inversion.bundle_domain import BundleDomain, apply_domain
    from inversion.inverter import Inverter
    from inversion.poc import measure

    out = Path(out)
    if out.exists():
        raise AdaptError(f"{str(out)!r} already exists; choose a new --out for the new bundle")
    run_dir = Path(run_dir) if run_dir is not None else out.parent / f"{out.name}.run"
    parent = load_bundle(cfg.bundle)
    size = parent.generator_config.size
    split = split_photos(cfg.photos, parent.domain, size, cfg.holdout)
    cfg.data_sha256 = split.sha256
    cfg.parent_version = parent.version
    replay = None
    if cfg.replay > 0:
        from inversion.training.data import load_fashion_mnist

        replay, _ = load_fashion_mnist("train", size=size, limit=cfg.replay)
    trainer = AdaptTrainer(
        cfg,
        run_dir,
        parent,
        split.train,
        reference_images(REFERENCE_GUARD, size)[: cfg.guard_n],
        replay=replay,
        device=device,
    )
    if resume:
        if trainer.resume():
            print(f"resumed from step {trainer.step}")
    elif (run_dir / "checkpoint.pt").exists() and trainer.info.is_main:
        (run_dir / "checkpoint.pt").unlink()
    log = trainer.train(progress=progress)
    guard = trainer.guard
    if guard["stopped"] is not None and trainer.good["step"] == 0:
        ddp.cleanup()
        raise ForgettingGuardError(
            f"forgetting guard: reconstruction on the original domain dropped "
            f"{guard['stopped']['drop_db']:.2f} dB by step {guard['stopped']['step']} "
            f"(limit {cfg.max_forgetting_db:g} dB) and no adapted state passed; "
            "nothing written (lower the learning rates, add --replay, or allow more)"
        )
    if not trainer.info.is_main:
        ddp.cleanup()
        return {}

    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    g_state = {k: v.detach().cpu() for k, v in trainer.g.state_dict().items()}
    provenance = {
        "parent": {"version": parent.version, "path": str(cfg.bundle)},
        "commands": [command] if command else [],
        "adaptation": {
            "photos": str(cfg.photos),
            "data_sha256": split.sha256,
            "files_sha256": split.hashes,
            "skipped": split.skipped,
            "replay": f"fashion-mnist:train[0:{cfg.replay}]" if cfg.replay else None,
            "trained": "encoder + fuser" + (" + generator synthesis" if cfg.tune_generator else ""),
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("encoder", "fuser")},
            "steps_done": trainer.step,
            "wall_s": round(trainer.wall_s, 1),
            "final_losses": log,
            "forgetting_guard": {k: v for k, v in guard.items()},
            "guard_reference": f"fashion-mnist:val[{REFERENCE_GUARD[0]}:"
            f"{REFERENCE_GUARD[0] + cfg.guard_n}]",
        },
    }
    build_bundle(
        tmp,
        {"g_ema": g_state, "latent_avg": parent.latent_avg},
        {k: v.detach().cpu() for k, v in trainer.encoder.state_dict().items()},
        (
            {k: v.detach().cpu() for k, v in trainer.fuser.state_dict().items()}
            if trainer.fuser is not None
            else None
        ),
        parent.encoder_config,
        parent.fuser_config,
        parent.directions,
        parent.catalog,
        provenance,
        metrics={},
        encoder_arch=parent.encoder_arch,
    )
    pd = parent.domain
    domain = BundleDomain(
        subject=pd.subject if pd.declared else "unspecified",
        align=pd.align,
        resolution=size,
        colour=pd.colour,
        paste_mode=pd.paste_mode,
        feather=pd.feather,
        description=(pd.description + "; " if pd.description else "")
        + f"adapted to the photos of {Path(cfg.photos).name}",
    )
    gate = _calibrate_gate(Inverter(load_bundle(tmp), "cpu", batch_size=256), domain, split, cfg)
    apply_domain(tmp, domain, gate, command=None)
    before = measure(cfg.bundle, split.holdout_paths, classifier_path=classifier, progress=False)[0]
    after = measure(tmp, split.holdout_paths, classifier_path=classifier, progress=False)[0]
    figures = {
        "held_out_photos": sorted(split.hashes["holdout"]),
        "before": _summary(before),
        "after": _summary(after),
        "edits_before": before["edits"] or None,
        "edits_after": after["edits"] or None,
        "note": "after.bundle_version is the version the figures were measured on; "
        "writing them into this manifest makes the final version",
    }

    def put(manifest: dict[str, Any]) -> None:
        manifest.setdefault("metrics", {})["poc_adaptation"] = figures

    _update_manifest(tmp, put)
    load_bundle(tmp)  # verify before it becomes visible
    os.rename(tmp, out)
    final = load_bundle(out)
    (run_dir / "summary.json").write_text(json.dumps(figures, indent=2))
    ddp.cleanup()
    return {
        "version": final.version,
        "parent": parent.version,
        "steps": trainer.step,
        "guard": guard,
        **{k: figures[k] for k in ("before", "after")},
    }


# -- CLI -----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True, type=Path, help="the parent bundle")
    p.add_argument("--photos", required=True, type=Path, help="folder of unlabelled photos")
    p.add_argument("--out", required=True, type=Path, help="the new bundle (must not exist)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run folder's checkpoint.pt"
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="checkpoints and logs (default: OUT.run next to OUT)",
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument(
        "--gen-batch",
        type=int,
        default=4,
        help="generated edit-consistency pairs per step (keeps edits working)",
    )
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--tune-generator",
        action="store_true",
        help="also fine-tune the generator's synthesis layers",
    )
    p.add_argument("--g-lr", type=float, default=5e-5)
    p.add_argument(
        "--max-forgetting-db",
        type=float,
        default=1.0,
        help="largest allowed drop of original-domain reconstruction PSNR",
    )
    p.add_argument("--guard-every", type=int, default=50)
    p.add_argument("--guard-n", type=int, default=250)
    p.add_argument(
        "--holdout",
        type=float,
        default=0.1,
        help="share of photos held out for the before/after figures (and "
        "the same share again for the gate's calibration)",
    )
    p.add_argument(
        "--replay", type=int, default=0, help="original training images mixed into the photos"
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="attribute classifier: edit figures before/after",
    )
    p.add_argument(
        "--gate-fit",
        type=int,
        default=2000,
        help="training photos the new gate's Gaussian is fitted on",
    )
    p.add_argument(
        "--gate-reference",
        type=int,
        nargs=2,
        default=(500, 250),
        metavar=("FIT", "CALIB"),
        help="original-domain images in the new gate's fit and calibration",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    for name in ("steps", "batch", "guard_n"):
        if getattr(args, name) < 1:
            raise AdaptError(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_forgetting_db < 0:
        raise AdaptError("--max-forgetting-db must be >= 0")
    cfg = AdaptConfig(
        bundle=str(args.bundle),
        photos=str(args.photos),
        steps=args.steps,
        time_budget_s=args.time_budget,
        batch=args.batch,
        gen_batch=args.gen_batch,
        lr=args.lr,
        tune_generator=args.tune_generator,
        g_lr=args.g_lr,
        max_forgetting_db=args.max_forgetting_db,
        guard_every=args.guard_every,
        guard_n=args.guard_n,
        holdout=args.holdout,
        replay=args.replay,
        gate_fit=args.gate_fit,
        gate_reference_fit=args.gate_reference[0],
        gate_reference_calib=args.gate_reference[1],
        seed=args.seed,
    )
    command = "python -m inversion " + shlex.join(getattr(args, "_argv", ["train", "adapt"]))
    summary = adapt(
        cfg,
        args.out,
        resume=args.resume,
        run_dir=args.run_dir,
        device=args.device,
        classifier=args.classifier,
        command=command,
    )
    if summary:
        print(json.dumps(summary, indent=2, default=str))
    return 0
