"""Tiny fixtures for the training tests (fast on a 2-core CPU)."""

from __future__ import annotations

import pytest
import torch

from inversion.modules.stylegan2 import Generator, GeneratorConfig


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, old))
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_gen_cfg() -> GeneratorConfig:
    return GeneratorConfig(
        size=32,
        style_dim=32,
        n_mlp=2,
        channel_multiplier=1,
        channels={4: 32, 8: 32, 16: 16, 32: 16},
    )


@pytest.fixture(scope="session")
def tiny_generator(tiny_gen_cfg: GeneratorConfig) -> tuple[Generator, torch.Tensor]:
    torch.manual_seed(0)
    g = Generator(tiny_gen_cfg).eval()
    avg = g.mean_latent(512, generator=torch.Generator().manual_seed(0))[0]
    return g, avg


@pytest.fixture(scope="session")
def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """16 deterministic 'product photos': bright blobs of varying size on black."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    imgs, labels = [], []
    for i in range(16):
        r = 4 + (i % 4) * 2.5
        cx, cy = 16 + torch.randn(2, generator=g).tolist()[0], 16.0
        blob = ((xx - cx) ** 2 / r**2 + (yy - cy) ** 2 / (r * 1.5) ** 2 < 1).float()
        level = 0.3 + 0.7 * ((i // 4) / 3)
        img = blob * level * 2 - 1
        imgs.append(img.expand(3, 32, 32))
        labels.append(i % 10)
    return torch.stack(imgs).contiguous(), torch.tensor(labels)
