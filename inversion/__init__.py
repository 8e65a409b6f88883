"""inversion: MambaStyle inversion and editing on a StyleGAN2 generator, in pure PyTorch.

Photos are encoded into W+ codes of a StyleGAN2 generator plus a detail feature map,
moved along named edit directions, and rendered again; a Fuser adds the detail back
into the generator's features so that edits keep the photo's specifics. The package
also reads and writes hash-verified model bundles and latent files (one format for the
platform and the command line) and has a command line
(``python -m inversion``). It never imports Django: the web platform calls it.

Importing the package is cheap: the public names below are resolved on first use, so
``import inversion`` (e.g. for ``inversion.errors``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> defining module
_EXPORTS: dict[str, str] = {
    # errors (no torch)
    "InversionError": "inversion.errors",
    "InvalidImage": "inversion.errors",
    "ImageTooLarge": "inversion.errors",
    "UnsupportedImageFormat": "inversion.errors",
    "EditError": "inversion.errors",
    "UnknownEdit": "inversion.errors",
    "StrengthOutOfRange": "inversion.errors",
    "InvalidDirection": "inversion.errors",
    "CheckpointError": "inversion.errors",
    "BundleError": "inversion.errors",
    "ConfigError": "inversion.errors",
    "UnknownConfigKey": "inversion.errors",
    "LatentError": "inversion.errors",
    "LatentFormatError": "inversion.errors",
    # generator
    "Generator": "inversion.modules.stylegan2",
    "GeneratorConfig": "inversion.modules.stylegan2",
    "load_rosinality_checkpoint": "inversion.modules.stylegan2",
    # editing
    "EditSpec": "inversion.editing.catalog",
    "EditCatalog": "inversion.editing.catalog",
    "compute_ganspace": "inversion.editing.ganspace",
    # bundles
    "ModelBundle": "inversion.bundle",
    "load_bundle": "inversion.bundle",
    "build_bundle": "inversion.bundle",
    "build_random_bundle": "inversion.bundle",
    # images
    "load_image_bytes": "inversion.preprocess",
    "image_to_tensor": "inversion.preprocess",
    "tensor_to_images": "inversion.preprocess",
    # inference
    "Inverter": "inversion.inverter",
    "Inversion": "inversion.inverter",
}

__all__ = [
    "BundleError",
    "CheckpointError",
    "ConfigError",
    "EditCatalog",
    "EditError",
    "EditSpec",
    "Generator",
    "GeneratorConfig",
    "ImageTooLarge",
    "InvalidDirection",
    "InvalidImage",
    "Inversion",
    "LatentError",
    "LatentFormatError",
    "InversionError",
    "Inverter",
    "ModelBundle",
    "StrengthOutOfRange",
    "UnknownConfigKey",
    "UnknownEdit",
    "UnsupportedImageFormat",
    "build_bundle",
    "build_random_bundle",
    "compute_ganspace",
    "image_to_tensor",
    "load_bundle",
    "load_image_bytes",
    "load_rosinality_checkpoint",
    "tensor_to_images",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'inversion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from inversion.bundle import ModelBundle, build_bundle, build_random_bundle, load_bundle
    from inversion.editing.catalog import EditCatalog, EditSpec
    from inversion.editing.ganspace import compute_ganspace
    from inversion.errors import (
        BundleError,
        CheckpointError,
        ConfigError,
        EditError,
        ImageTooLarge,
        InvalidDirection,
        InvalidImage,
        InversionError,
        LatentError,
        LatentFormatError,
        StrengthOutOfRange,
        UnknownConfigKey,
        UnknownEdit,
        UnsupportedImageFormat,
    )
    from inversion.inverter import Inversion, Inverter
    from inversion.modules.stylegan2 import Generator, GeneratorConfig, load_rosinality_checkpoint
    from inversion.preprocess import image_to_tensor, load_image_bytes, tensor_to_images
