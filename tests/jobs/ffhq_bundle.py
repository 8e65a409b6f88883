"""A bring-your-own, FFHQ-shaped bundle with seeded random weights, small enough for a CPU.

What an operator does with the public FFHQ checkpoint (README "Bring your own model"),
at a size a test can afford: a rosinality-layout ``g_ema`` checkpoint of a **1024 px,
18-code** StyleGAN2 generator (the key layout of ``stylegan2-ffhq-config-f.pt``,
../shared/formats/stylegan2_keys.json, with narrow channels and a short mapping network
instead of 512 everywhere) is written to a ``.pt`` file, turned into a bundle with
:func:`inversion.bundle.build_bundle` next to a small MambaStyle encoder and Fuser, and
given a face domain (``ffhq`` alignment, RGB, 1024 px) with
:func:`inversion.bundle_domain.apply_domain`.

No domain gate: a gate is calibrated on in-domain crops, and the only in-domain images a
random-weight generator has are its own 1024 px samples, about 3 s of CPU each here, so
calibrating one would cost minutes per test run. The job then reports ``gated: false``
and tells the requester the photo was not checked (an operator's real bundle gets its
gate from ``python -m inversion bundle domain`` on their own aligned photos).
"""

from __future__ import annotations

from pathlib import Path

import torch

# 1024 px like FFHQ config-f (18 W+ codes), channels cut to a few so one render takes
# about a second of CPU (the 3-channel RGB skips at 1024 px set the floor).
CHANNELS = {4: 32, 8: 32, 16: 32, 32: 16, 64: 8, 128: 8, 256: 4, 512: 2, 1024: 2}
STYLE_DIM = 32
N_MLP = 2
FEATHER = 0.1


def write_rosinality_checkpoint(path: Path, seed: int = 0) -> Path:
    """A seeded ``{"g_ema": state_dict, "latent_avg": ...}`` checkpoint, as rosinality's
    ``train.py`` saves one (what an operator downloads for FFHQ)."""
    from inversion.modules.stylegan2 import Generator, GeneratorConfig

    cfg = GeneratorConfig(
        size=1024, style_dim=STYLE_DIM, n_mlp=N_MLP, channel_multiplier=2, channels=CHANNELS
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = Generator(cfg).eval()
    latent_avg = g.mean_latent(2048, generator=torch.Generator().manual_seed(seed))[0]
    torch.save({"g_ema": g.state_dict(), "latent_avg": latent_avg}, path)
    return path


def build_ffhq_shaped_bundle(root: Path, seed: int = 0) -> Path:
    """Checkpoint -> bundle -> face domain (no gate); returns the bundle's directory."""
    from inversion import registry
    from inversion.bundle import build_bundle
    from inversion.bundle_domain import BundleDomain, apply_domain
    from inversion.editing.catalog import EditCatalog, EditSpec
    from inversion.editing.ganspace import compute_ganspace
    from inversion.modules.encoder import EncoderConfig
    from inversion.modules.fuser import FuserConfig
    from inversion.modules.stylegan2 import Generator, infer_config
    from inversion.presets import align_configs

    root.mkdir(parents=True, exist_ok=True)
    ckpt = write_rosinality_checkpoint(root / "stylegan2-ffhq-shaped.pt", seed)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    gen_cfg = infer_config(state["g_ema"])
    g = Generator(gen_cfg).eval()
    g.load_state_dict(state["g_ema"])
    enc_cfg, fus_cfg = align_configs(gen_cfg, EncoderConfig.tiny(), FuserConfig.tiny())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        arch = registry.get(registry.DEFAULT_ARCH)
        encoder = arch.build(enc_cfg)
        fuser = arch.fuser.build(fus_cfg)
    space = compute_ganspace(g, n_samples=1024, n_components=2, seed=seed + 2)
    n = g.n_latent
    catalog = EditCatalog(
        [
            EditSpec("smile", "Smile (placeholder: GANSpace PC0)", "ganspace_pc0", "w", (4, 8)),
            EditSpec("lighting", "Lighting (placeholder: PC1)", "ganspace_pc1", "w", (8, n)),
        ]
    )
    bundle_dir = root / "ffhq-shaped"
    build_bundle(
        bundle_dir,
        ckpt,
        encoder.state_dict(),
        fuser.state_dict(),
        enc_cfg,
        fus_cfg,
        space.directions(),
        catalog,
        {
            "training": "untrained: seeded random weights (tests/jobs/ffhq_bundle.py)",
            "seeds": {"generator": seed, "encoder": seed + 1, "ganspace": seed + 2},
            "data": None,
            "commands": ["tests/jobs/ffhq_bundle.py: build_ffhq_shaped_bundle"],
        },
        metrics={},
    )
    domain = BundleDomain(
        subject="face",
        align="ffhq",
        resolution=gen_cfg.size,
        colour="rgb",
        feather=FEATHER,
        description="faces aligned like FFHQ (random weights: only what they draw)",
    )
    apply_domain(bundle_dir, domain, None, command="tests/jobs/ffhq_bundle.py")
    return bundle_dir
