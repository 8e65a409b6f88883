"""Quality mode ``refine``: a bounded optimisation that starts from the encoder's answer.

The encoder (``fast``) gives W+ codes and a detail map in one pass; optimisation-based
inversion (:func:`inversion.evaluate.optimise_inversion`, Adam on W+ from
``latent_avg``) reaches better fidelity but needs hundreds of steps. ``refine`` takes
the encoder's result as the start and runs a few Adam steps on it against the aligned
crop, so most of the gap closes in a fraction of the ceiling's steps.

What is optimised, and why:

* the **W+ codes** (absolute, latent_avg included), as the ceiling does;
* the encoder's **detail map**, i.e. the Fuser's *input* ``detail`` rather than its
  output residual or its ``d`` input. The Fuser's residual is ``Fuser(d, detail)``;
  optimising ``detail`` moves that residual (for d = 0, the reconstruction) while
  keeping the one latent format (:mod:`inversion.latent` stores exactly ``wplus`` and
  ``detail``) and the edit path untouched: an edit still renders with
  ``Fuser(w_edit - w, detail)``, so the detail follows the edit the way the Fuser was
  trained to make it follow. Optimising ``d`` would be meaningless (it is 0 for the
  reconstruction and w_edit - w by definition for an edit), and a free residual offset
  added after the Fuser would need a new latent field and would not move with an edit.

The loss is the encoder's training objective on the one image: pixel MSE plus the
multi-scale MSE (:func:`inversion.training.train_encoder.multiscale_mse`), plus an SSIM
term (:func:`inversion.evaluate.ssim`, the metric the quality report measures) and a
small anchor keeping W+ near the encoder's codes (edit directions were fitted on codes
like those; a code far off the encoder's manifold edits less predictably). The step
size follows the StyleGAN2 projector's schedule
(:func:`inversion.evaluate.projector_lr_scale`) without the warm-up. Everything runs
with the generator's stored noise (or the seeded noise of ``Inverter(noise="random")``)
and no randomness of its own, so a run is deterministic for a given seed.

The number of steps is capped by ``max_steps`` (the platform passes its
``REFINE_MAX_STEPS`` setting): a request above the cap runs the cap.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from inversion.errors import InvalidImage, InversionError

if TYPE_CHECKING:
    from inversion.inverter import Inversion, Inverter

__all__ = ["RefineConfig", "RefineError", "refine", "refine_target", "QUALITY_MODES"]

QUALITY_MODES = ("fast", "refine")
LOSS_MAX_SIZE = 256  # compare at most at 256 px (as pSp/e4e do for 1024 px generators)


class RefineError(InversionError, ValueError):
    """Bad refine request (steps, target shape, missing detail map)."""


@dataclass(frozen=True)
class RefineConfig:
    """Step sizes and loss weights (defaults chosen on the demo's validation split)."""

    lr_w: float = 0.02
    lr_detail: float = 0.05
    w_mse: float = 1.0
    w_multiscale: float = 0.5
    w_ssim: float = 0.1
    w_anchor: float = 1e-3


_FAST_GENERATORS: weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Module] = (
    weakref.WeakKeyDictionary()
)


def _optimisation_generator(g: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``g`` with the training-speed ops (same maths, faster backward on CPU),
    built once per generator; the final render uses ``g`` itself so a refined
    reconstruction and its edits come from the platform's one rendering path."""
    fast = _FAST_GENERATORS.get(g)
    if fast is None:
        from inversion.training.fastconv import use_fast_ops

        fast = use_fast_ops(copy.deepcopy(g)).eval()
        for p in fast.parameters():
            p.requires_grad_(False)
        _FAST_GENERATORS[g] = fast
    return fast


def refine_target(
    inverter: Inverter, images: Sequence[Image.Image] | Image.Image | Tensor
) -> Tensor:
    """The images to match, (B, 3, s, s) in [-1, 1] with s = min(model size, 256)."""
    size = min(inverter.output_size, LOSS_MAX_SIZE)
    if isinstance(images, Tensor):
        x = images.unsqueeze(0) if images.ndim == 3 else images
        if x.ndim != 4 or x.shape[1] != 3:
            raise InvalidImage(f"expected (B, 3, H, W) image tensors, got {tuple(x.shape)}")
        x = x.float()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
    else:
        from inversion.preprocess import image_to_tensor

        x = image_to_tensor(images, size)
    return x


def _to_loss_size(x: Tensor, size: int) -> Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="area")


def refine(
    inverter: Inverter,
    inversion: Inversion,
    images: Sequence[Image.Image] | Image.Image | Tensor,
    steps: int,
    *,
    max_steps: int | None = None,
    config: RefineConfig | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> Inversion:
    """Optimise ``inversion``'s W+ codes and detail map against ``images``.

    ``images``: the aligned crops the inversion came from (PIL or (B, 3, H, W) in
    [-1, 1]). ``steps`` Adam steps, at most ``max_steps``; 0 returns the inversion
    re-rendered. Returns a new :class:`~inversion.inverter.Inversion` with the
    reconstruction rendered by the inverter (so ``edit`` with strength 0 reproduces it).
    """
    from inversion.evaluate import projector_lr_scale, ssim
    from inversion.inverter import Inversion
    from inversion.training.train_encoder import multiscale_mse

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise RefineError(f"refine steps must be a whole number >= 0, got {steps!r}")
    if max_steps is not None:
        if max_steps < 0:
            raise RefineError(f"max_steps must be >= 0, got {max_steps!r}")
        steps = min(steps, max_steps)
    cfg = config or RefineConfig()
    report = progress or (lambda stage, fraction: None)
    inverter.check_fits(inversion)
    target_all = refine_target(inverter, images).to(inverter.device)
    n = len(inversion)
    if target_all.shape[0] != n:
        raise RefineError(f"{target_all.shape[0]} target image(s) for {n} inversion(s)")
    use_detail = inverter.fuser is not None and inversion.detail is not None
    loss_size = target_all.shape[-1]
    g = _optimisation_generator(inverter.generator)
    size = batch_size or inverter.batch_size
    parts = []
    # the caller may be inside inference_mode (Inverter.invert): gradients need it off
    with torch.inference_mode(False), torch.enable_grad():
        for start in range(0, n, size):
            sl = slice(start, min(start + size, n))
            w0 = inversion.wplus[sl].to(inverter.device, torch.float32).clone()
            d0 = (inversion.detail[sl].to(inverter.device, torch.float32).clone()
                  if use_detail else None)
            target = target_all[sl].clone()
            target01 = target.add(1).div(2)
            w = w0.clone().requires_grad_(True)
            params = [{"params": [w], "lr": cfg.lr_w}]
            detail = None
            if d0 is not None:
                detail = d0.clone().requires_grad_(True)
                params.append({"params": [detail], "lr": cfg.lr_detail})
            opt = torch.optim.Adam(params, betas=(0.9, 0.999))
            base = [grp["lr"] for grp in opt.param_groups]
            noise = inverter._noise(w.shape[0], seed, start)
            for step in range(steps):
                for grp, lr in zip(opt.param_groups, base, strict=True):
                    grp["lr"] = lr * projector_lr_scale(step, steps, ramp_up=False)
                residual = None
                if detail is not None:
                    residual = {inverter.fuser_resolution:
                                inverter.fuser(torch.zeros_like(w), detail)}
                rec = _to_loss_size(
                    g.synthesis(w, noise=noise, feature_residual=residual), loss_size)
                loss = (cfg.w_mse * F.mse_loss(rec, target)
                        + cfg.w_multiscale * multiscale_mse(rec, target)
                        + cfg.w_anchor * (w - w0).pow(2).mean())
                if cfg.w_ssim:
                    loss = loss + cfg.w_ssim * (1 - ssim(rec.add(1).div(2), target01).mean())
                leaves = [w] if detail is None else [w, detail]
                # grads for the codes only: the shared models' .grad stay untouched
                grads = torch.autograd.grad(loss, leaves)
                for leaf, grad in zip(leaves, grads, strict=True):
                    leaf.grad = grad
                opt.step()
                report("refine", (start + (sl.stop - start) * (step + 1) / steps) / n)
            with torch.no_grad():
                wf = w.detach().to(inverter.dtype)
                df = detail.detach().to(inverter.dtype) if detail is not None else None
                zeros = torch.zeros_like(wf) if df is not None else None
                recon = inverter._render(wf, df, zeros, seed, start)
            kept = inversion.detail[sl] if inversion.detail is not None else None
            parts.append(Inversion(wf, df if use_detail else kept, recon,
                                   inversion.bundle_version or inverter.version))
    report("refine", 1.0)
    return Inversion.cat(parts)
