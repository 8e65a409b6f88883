"""The one config base (inversion.config) and the encoder registry (inversion.registry)."""

from __future__ import annotations

import json

import pytest
import torch

from inversion import registry
from inversion.baselines.psp import GradualStyleEncoder, PSPConfig
from inversion.config import ModelConfig
from inversion.errors import ConfigError, UnknownArchitecture, UnknownConfigKey
from inversion.modules.encoder import EncoderConfig, MambaStyleEncoder
from inversion.modules.fuser import Fuser, FuserConfig
from inversion.modules.stylegan2 import GeneratorConfig
from inversion.presets import model_configs
from inversion.training.discriminator import DiscriminatorConfig

CONFIGS = [
    GeneratorConfig.tiny(),
    EncoderConfig.tiny(),
    FuserConfig.tiny(),
    PSPConfig.tiny(),
    DiscriminatorConfig.matching(GeneratorConfig.tiny().channel_table, 32),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: type(c).__name__)
def test_every_config_round_trips_through_json(cfg: ModelConfig) -> None:
    assert isinstance(cfg, ModelConfig)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON types only
    assert type(cfg).from_dict(json.loads(json.dumps(d))) == cfg


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: type(c).__name__)
def test_every_config_refuses_unknown_keys_by_name(cfg: ModelConfig) -> None:
    name = type(cfg).__name__
    with pytest.raises(UnknownConfigKey, match=rf"unknown {name} keys: \['typo_a', 'typo_b'\]"):
        type(cfg).from_dict({**cfg.to_dict(), "typo_b": 1, "typo_a": 2})
    with pytest.raises(ConfigError, match=f"{name} must be built from a mapping"):
        type(cfg).from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (GeneratorConfig, {"size": 48}, "power of two"),
        (GeneratorConfig, {"size": "32"}, r"GeneratorConfig.size must be int, got '32'"),
        (EncoderConfig, {"fpn_channels": [8, 8]}, "3 levels"),
        (EncoderConfig, {"n_latent": True}, "EncoderConfig.n_latent must be int"),
        (EncoderConfig, {"dt_rank": 1.5}, "dt_rank must be int or None"),
        (FuserConfig, {"token_dim": None}, "FuserConfig.token_dim must be int"),
        (PSPConfig, {"coarse": 9}, "coarse < middle"),
        (DiscriminatorConfig, {"size": 24}, "power of two"),
    ],
)
def test_bad_values_are_config_errors(cls: type, changes: dict, message: str) -> None:
    base = {f: v for f, v in CONFIGS[[type(c) for c in CONFIGS].index(cls)].to_dict().items()}
    with pytest.raises(ConfigError, match=message):
        cls.from_dict({**base, **changes})
    assert issubclass(ConfigError, ValueError)  # callers catching ValueError still do


def test_ints_for_float_fields_are_stored_as_floats() -> None:
    cfg = EncoderConfig.from_dict({**EncoderConfig.tiny().to_dict(), "expand": 1})
    assert isinstance(cfg.expand, float) and cfg == EncoderConfig.tiny()


def test_registry_names_classes_presets_and_fuser() -> None:
    assert registry.names() == ["mambastyle", "psp"] and registry.DEFAULT_ARCH == "mambastyle"
    ms, psp = registry.get("mambastyle"), registry.get("psp")
    assert ms.config_class() is EncoderConfig and ms.module_class() is MambaStyleEncoder
    assert psp.config_class() is PSPConfig and psp.module_class() is GradualStyleEncoder
    assert ms.fuser is registry.FUSER and psp.fuser is None
    assert registry.FUSER.config_class() is FuserConfig and registry.FUSER.module_class() is Fuser
    assert psp.preset("tiny") == PSPConfig.tiny() and ms.preset("full") == EncoderConfig.full()
    with pytest.raises(ValueError, match="no preset 'huge'"):
        ms.preset("huge")
    with pytest.raises(UnknownArchitecture, match=r"unknown encoder architecture 'e4e'; known: "):
        registry.get("e4e")
    with pytest.raises(ConfigError):  # from a manifest's wrong type too
        registry.get(3)
    torch.manual_seed(0)
    out = psp.build(psp.preset("tiny"))(torch.zeros(1, 3, 64, 64))
    assert out.wplus.shape == (1, 8, 64) and out.detail is None


@pytest.mark.parametrize("arch", registry.names())
def test_presets_fit_the_generator(arch: str) -> None:
    gen, enc, fus = model_configs("tiny", arch)
    assert (enc.n_latent, enc.style_dim) == (gen.n_latent, gen.style_dim)
    if registry.get(arch).fuser is None:
        assert fus is None
    else:
        assert fus.out_channels == gen.channel_table[fus.resolution]
        assert fus.detail_channels == enc.detail_channels
    with pytest.raises(UnknownArchitecture):
        model_configs("tiny", "nope")
