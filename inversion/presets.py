"""Named model presets: generator, encoder and Fuser configs that fit together.

The three networks share dimensions (W+ codes, style_dim, the detail map's channels,
the generator's channels at the Fuser's resolution). A preset takes the component
presets and aligns those shared fields from the generator, so a bundle built from a
preset always loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from inversion.modules.stylegan2 import GeneratorConfig

__all__ = ["PRESETS", "model_configs", "align_configs"]

# preset name -> (generator preset, encoder/fuser classmethod)
PRESETS: dict[str, tuple[str, str]] = {
    "tiny": ("tiny", "tiny"),
    "full": ("ffhq1024", "full"),
}


def _replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` limited to the fields the config actually has."""
    names = {f.name for f in dataclasses.fields(cfg)}
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if k in names})


def align_configs(gen_cfg: GeneratorConfig, enc_cfg: Any, fus_cfg: Any) -> tuple[Any, Any]:
    """Return (encoder, fuser) configs with their shared fields set from the generator."""
    enc_cfg = _replace(enc_cfg, n_latent=gen_cfg.n_latent, style_dim=gen_cfg.style_dim)
    resolution = getattr(fus_cfg, "resolution", None)
    if resolution is None or resolution not in gen_cfg.resolutions:
        raise ValueError(
            f"fuser resolution {resolution} is not a generator block resolution "
            f"{gen_cfg.resolutions}"
        )
    fus_cfg = _replace(
        fus_cfg,
        n_latent=gen_cfg.n_latent,
        style_dim=gen_cfg.style_dim,
        detail_channels=getattr(enc_cfg, "detail_channels", None),
        out_channels=gen_cfg.channel_table[resolution],
    )
    return enc_cfg, fus_cfg


def model_configs(preset: str) -> tuple[GeneratorConfig, Any, Any]:
    """(GeneratorConfig, EncoderConfig, FuserConfig) for ``preset`` ("tiny", "full")."""
    from inversion.modules.encoder import EncoderConfig
    from inversion.modules.fuser import FuserConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
    gen_name, part = PRESETS[preset]
    gen_cfg = GeneratorConfig.preset(gen_name)
    enc_cfg = getattr(EncoderConfig, part)()
    fus_cfg = getattr(FuserConfig, part)()
    enc_cfg, fus_cfg = align_configs(gen_cfg, enc_cfg, fus_cfg)
    return gen_cfg, enc_cfg, fus_cfg
