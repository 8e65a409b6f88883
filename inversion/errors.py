"""Typed errors of the inversion package.

The web platform maps these to 4xx responses (bad input) or to a failed job (bad model
bundle), so each one says what was wrong in words a requester or an operator can act
on. Everything derives from :class:`InversionError`, so a caller can catch the whole
family at once without catching programming errors (``TypeError``, ``KeyError``...).
"""

from __future__ import annotations


class InversionError(Exception):
    """Base class of every error this package raises on purpose."""


# --- input images -------------------------------------------------------------------


class InvalidImage(InversionError, ValueError):
    """The bytes are not a decodable image (corrupt, truncated, empty, animated...)."""


class UnsupportedImageFormat(InvalidImage):
    """The image decodes but its container format is not on the allowed list."""


class ImageTooLarge(InvalidImage):
    """The image has more pixels (or bytes) than the configured limit."""


# --- edits --------------------------------------------------------------------------


class EditError(InversionError, ValueError):
    """An edit request or an edit definition is not acceptable."""


class UnknownEdit(EditError, KeyError):
    """An edit name that the catalog does not define."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        listed = ", ".join(self.known) if self.known else "none"
        super().__init__(f"unknown edit {name!r}; available edits: {listed}")

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


class StrengthOutOfRange(EditError):
    """An edit strength outside the catalog's [min_strength, max_strength]."""

    def __init__(self, name: str, strength: object, low: float, high: float) -> None:
        self.name = name
        self.strength = strength
        self.low = low
        self.high = high
        super().__init__(
            f"strength {strength!r} for edit {name!r} is out of range; allowed: {low:g} to {high:g}"
        )


class InvalidDirection(EditError):
    """A direction file or tensor has the wrong shape, dtype or non-finite values."""


# --- model configs and architectures ----------------------------------------------


class ConfigError(InversionError, ValueError):
    """A model config (or its dict form) is not acceptable: wrong types or values."""


class UnknownConfigKey(ConfigError):
    """A config dict holds keys the config class does not define (a typo, or a newer
    format): refused rather than ignored, so a config never silently means less."""

    def __init__(self, config: str, keys: list[str] | tuple[str, ...]) -> None:
        self.config = config
        self.keys = tuple(keys)
        super().__init__(f"unknown {config} keys: {list(self.keys)}")


class UnknownArchitecture(ConfigError, KeyError):
    """An encoder architecture name that the registry does not know."""

    def __init__(self, name: object, known: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown encoder architecture {name!r}; known: {list(self.known)}")

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


# --- latents ------------------------------------------------------------------------


class LatentError(InversionError, ValueError):
    """A latent file cannot be used: not the latent format, malformed, or not for this
    model."""


class LatentFormatError(LatentError):
    """The bytes are not a ``styleledger-latent/1`` safetensors file (e.g. an old
    ``torch.save`` latent, which is refused rather than unpickled)."""


class LatentMismatch(LatentError):
    """A well-formed latent whose shapes (or model version) do not fit the model."""


# --- model bundles and checkpoints --------------------------------------------------


class CheckpointError(InversionError):
    """A generator checkpoint cannot be read or does not look like the expected format."""


class BundleError(InversionError):
    """A model bundle cannot be used. Subclasses say why."""


class BundleNotFound(BundleError, FileNotFoundError):
    """The bundle directory (or its manifest) does not exist."""


class ManifestError(BundleError):
    """manifest.json is malformed: not JSON, missing fields, wrong types."""


class UnsupportedBundleVersion(ManifestError):
    """manifest.json declares a format_version this code does not read."""


class BundleFileMissing(BundleError):
    """A file the manifest lists (or the format requires) is not in the directory."""


class UnexpectedBundleFile(BundleError):
    """The directory holds a file that the manifest does not list."""


class BundleIntegrityError(BundleError):
    """A file's SHA-256 or size differs from the manifest."""


class BundleContentError(BundleError):
    """A file's hash matches, but its content does not fit the configs (keys, shapes)."""
