"""GANSpace: unsupervised edit directions from PCA of the generator's W space.

Härkönen et al. (2020) observed that the principal components of mapped W samples are
meaningful edits (the first few change pose, gender, age, lighting...), and that
applying them to a layer range localises the effect. Any generator works, trained or
random, so a bundle always has directions even before a labelled set (InterFaceGAN)
exists. PCA here is the eigendecomposition of the sample covariance in float64: exact
and deterministic for a given seed (unlike randomised ``pca_lowrank``), and cheap
because style_dim is at most 512.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from inversion.modules.stylegan2 import Generator

__all__ = ["GanSpace", "compute_ganspace"]


@dataclass
class GanSpace:
    """PCA of W: unit ``components`` (K, D), ``stddevs`` (K,), ``mean`` (D,)."""

    components: Tensor
    stddevs: Tensor
    mean: Tensor
    explained_variance_ratio: Tensor
    n_samples: int
    seed: int

    def directions(self, prefix: str = "ganspace_pc", unit: bool = False) -> dict[str, Tensor]:
        """Named W directions; scaled to one standard deviation unless ``unit``.

        Scaled directions make strengths read as "sigmas along the component".
        """
        scale = torch.ones_like(self.stddevs) if unit else self.stddevs
        return {
            f"{prefix}{i}": (self.components[i] * scale[i]).contiguous()
            for i in range(self.components.shape[0])
        }


@torch.no_grad()
def compute_ganspace(
    generator: Generator,
    n_samples: int = 10_000,
    n_components: int = 16,
    seed: int = 0,
    batch_size: int = 1024,
) -> GanSpace:
    """Map ``n_samples`` seeded z through the mapping network and PCA the W codes."""
    style_dim = generator.style_dim
    if not 1 <= n_components <= style_dim:
        raise ValueError(f"n_components must be in [1, {style_dim}], got {n_components}")
    if n_samples < 2:
        raise ValueError("n_samples must be >= 2")
    param = next(generator.parameters())
    rng = torch.Generator(device="cpu").manual_seed(seed)
    chunks = []
    for start in range(0, n_samples, batch_size):
        n = min(batch_size, n_samples - start)
        z = torch.randn(n, style_dim, generator=rng).to(param.device, param.dtype)
        chunks.append(generator.get_latent(z).double().cpu())
    w = torch.cat(chunks)
    mean = w.mean(0)
    centred = w - mean
    cov = centred.T @ centred / (n_samples - 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals = evals.flip(0).clamp_min(0)
    evecs = evecs.flip(1).T  # (D, D), rows are components, descending variance
    # eigenvectors have arbitrary signs: make each one's largest coordinate positive
    idx = evecs.abs().argmax(dim=1)
    signs = torch.sign(evecs[torch.arange(evecs.shape[0]), idx])
    evecs = evecs * signs[:, None]
    total = evals.sum().clamp_min(1e-30)
    return GanSpace(
        components=evecs[:n_components].float().contiguous(),
        stddevs=evals[:n_components].sqrt().float(),
        mean=mean.float(),
        explained_variance_ratio=(evals[:n_components] / total).float(),
        n_samples=n_samples,
        seed=seed,
    )
