"""The encoder architectures the package can build, by name: one table for every caller.

A bundle manifest, a training run and a preset name an encoder architecture
(``"mambastyle"``, ``"psp"``); this registry turns the name into its config class,
its module class, its presets and whether it feeds a Fuser (only encoders with a
detail map do). Bundles, training, presets and the benchmark look names up here
instead of each keeping its own ``if arch == ...`` switch, so adding an encoder is
one entry. Classes are named by import path and imported on first use: reading the
table does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inversion.errors import UnknownArchitecture

if TYPE_CHECKING:
    from torch import nn

    from inversion.config import ModelConfig

__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "FUSER", "Architecture", "Component", "get", "names"]


PRESET_NAMES = ("tiny", "full")  # every registered config class defines these classmethods


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Component:
    """A network: its config class and module class (``"package.module:Name"``)."""

    config: str
    module: str

    def config_class(self) -> type[ModelConfig]:
        return _resolve(self.config)

    def module_class(self) -> type[nn.Module]:
        return _resolve(self.module)

    def config_from_dict(self, d: Mapping[str, Any] | ModelConfig) -> ModelConfig:
        """A config object from its dict (or the object itself); ConfigError when invalid."""
        return self.config_class().from_dict(d)  # type: ignore[arg-type]

    def build(self, cfg: ModelConfig) -> nn.Module:
        return self.module_class()(cfg)

    def preset(self, name: str) -> ModelConfig:
        """A named preset config (a classmethod of the config class: ``tiny``, ``full``)."""
        cls = self.config_class()
        factory = getattr(cls, name, None) if name in PRESET_NAMES else None
        if factory is None:
            raise ValueError(f"{cls.__name__} has no preset {name!r}; known: {list(PRESET_NAMES)}")
        return factory()


FUSER = Component("inversion.modules.fuser:FuserConfig", "inversion.modules.fuser:Fuser")


@dataclass(frozen=True)
class Architecture(Component):
    """An encoder architecture: its config and module classes, presets (see
    :meth:`Component.preset`) and the Fuser it feeds (None: no detail map, W+ only)."""

    name: str = ""
    label: str = ""
    fuser: Component | None = None


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            "inversion.modules.encoder:EncoderConfig",
            "inversion.modules.encoder:MambaStyleEncoder",
            name="mambastyle",
            label="MambaStyle encoder + Fuser (lean)",
            fuser=FUSER,
        ),
        Architecture(
            "inversion.baselines.psp:PSPConfig",
            "inversion.baselines.psp:GradualStyleEncoder",
            name="psp",
            label="pSp GradualStyleEncoder",
        ),
    )
}
DEFAULT_ARCH = "mambastyle"  # what bundles written before the manifest named it hold


def get(name: object) -> Architecture:
    """The architecture called ``name``; :class:`UnknownArchitecture` otherwise."""
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise UnknownArchitecture(name, names())
    return ARCHITECTURES[name]


def names() -> list[str]:
    return list(ARCHITECTURES)
