"""The model-source hook: which bundle directory serves a version, without knowing who decides.

Jobs sit below the model registry (editplatform.models_registry), so they cannot import
its rules. The registry registers a resolver here from ``AppConfig.ready()``; the engine
asks :func:`resolve` for the bundle of the active version (``version=None``, what a new
job is pinned to) or of the version a queued job was pinned to at submit.

With no resolver registered, or when the resolver answers None (no model registered
yet), the platform keeps working from ``settings.MODEL_BUNDLE`` as before the registry
existed; a pinned version is then accepted only if it is that bundle's version (the
engine checks the manifest hash).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from editplatform.core.errors import DomainError


@dataclass(frozen=True)
class ModelRef:
    """A bundle directory and the version (manifest SHA-256) it must have; None: unchecked."""

    path: Path
    version: str | None = None


class UnknownModelVersion(DomainError):
    """A job names a model version the registry does not serve (unknown, retired, altered).

    Not transient: the job fails with this message instead of retrying.
    """

    def __init__(self, message: str):
        super().__init__(message, "model_unknown", status=409)


Resolver = Callable[[str | None], ModelRef | None]

_resolver: Resolver | None = None


def register(resolver: Resolver | None) -> None:
    """Install the registry's resolver (None removes it, e.g. in a test)."""
    global _resolver
    _resolver = resolver


def fallback() -> ModelRef:
    """The ungoverned source: settings.MODEL_BUNDLE, whatever version it holds."""
    return ModelRef(Path(settings.MODEL_BUNDLE), None)


def resolve(version: str | None = None) -> ModelRef:
    """The bundle for ``version`` (None: the active one); UnknownModelVersion when refused."""
    resolver = _resolver
    ref = resolver(version) if resolver is not None else None
    if ref is None:
        ref = fallback()
        if version:  # the engine compares the manifest's hash with the pin
            return ModelRef(ref.path, version)
    return ref
