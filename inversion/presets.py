"""Named model presets: generator, encoder and Fuser configs that fit together.

The networks share dimensions (W+ codes, style_dim, the detail map's channels, the
generator's channels at the Fuser's resolution). A preset takes the component presets
of an encoder architecture (from :mod:`inversion.registry`) and aligns those shared
fields from the generator, so a bundle built from a preset always loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from inversion import registry
from inversion.errors import ConfigError
from inversion.modules.stylegan2 import GeneratorConfig

__all__ = ["PRESETS", "model_configs", "align_configs"]

# preset name -> (generator preset, encoder/fuser preset)
PRESETS: dict[str, tuple[str, str]] = {
    "tiny": ("tiny", "tiny"),
    "full": ("ffhq1024", "full"),
}


def _replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` limited to the fields the config actually has."""
    names = {f.name for f in dataclasses.fields(cfg)}
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if k in names})


def align_configs(gen_cfg: GeneratorConfig, enc_cfg: Any, fus_cfg: Any | None) -> tuple[Any, Any]:
    """(encoder, fuser) configs with their shared fields set from the generator.

    ``fus_cfg`` is None for encoders without a Fuser (it stays None).
    """
    enc_cfg = _replace(enc_cfg, n_latent=gen_cfg.n_latent, style_dim=gen_cfg.style_dim)
    if fus_cfg is None:
        return enc_cfg, None
    resolution = fus_cfg.resolution
    if resolution not in gen_cfg.resolutions:
        raise ConfigError(
            f"fuser resolution {resolution} is not a generator block resolution "
            f"{gen_cfg.resolutions}"
        )
    fus_cfg = _replace(
        fus_cfg,
        n_latent=gen_cfg.n_latent,
        style_dim=gen_cfg.style_dim,
        detail_channels=enc_cfg.detail_channels,
        out_channels=gen_cfg.channel_table[resolution],
    )
    return enc_cfg, fus_cfg


def model_configs(
    preset: str, arch: str = registry.DEFAULT_ARCH
) -> tuple[GeneratorConfig, Any, Any | None]:
    """(GeneratorConfig, encoder config, FuserConfig or None) for ``preset`` and ``arch``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
    architecture = registry.get(arch)
    gen_name, part = PRESETS[preset]
    gen_cfg = GeneratorConfig.preset(gen_name)
    enc_cfg = architecture.preset(part)
    fus_cfg = architecture.fuser.preset(part) if architecture.fuser else None
    return (gen_cfg, *align_configs(gen_cfg, enc_cfg, fus_cfg))
