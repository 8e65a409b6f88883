"""The model-source hook: which bundle directory serves a version, without knowing who decides.

Jobs sit below the model registry (editplatform.models_registry), so they cannot import
its rules. The registry registers a resolver here from ``AppConfig.ready()``; the engine
asks :func:`resolve` for the bundle of the active version (``version=None``, what a new
job is pinned to) or of the version a queued job was pinned to at submit.

With no resolver registered, or when the resolver answers None (no model registered
yet), the platform keeps working from ``settings.MODEL_BUNDLE`` as before the registry
existed; a pinned version is then accepted only if it is that bundle's version (the
engine checks the manifest hash).

The submit path asks for the active version on every request; :func:`resolve_active`
keeps the registry's answer per process instead of querying it each time. A cached
answer is never trusted on its own: the job's transaction calls :func:`confirm_active`,
the registry's one-statement check that the cached version is still the active one (on
PostgreSQL it also share-locks that row, so an activation waits until the job has
committed). When it is not, the caller drops the cache (:func:`forget_active`) and
resolves again: a job is never pinned to a version that was deactivated before it
committed.
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
ActiveCheck = Callable[[ModelRef], bool]
"""``check(ref)``: is ``ref`` (version None: "nothing registered") what the resolver
answers for the active version right now, path included? Called inside the caller's
transaction."""

_resolver: Resolver | None = None
_active_check: ActiveCheck | None = None
# (resolver, its answer for the active version): the answer counts only for that resolver
_active: tuple[Resolver, ModelRef | None] | None = None


def register(resolver: Resolver | None, active_check: ActiveCheck | None = None) -> None:
    """Install the registry's resolver and its active-version check (None removes them)."""
    global _resolver, _active_check
    _resolver = resolver
    _active_check = active_check
    forget_active()


def forget_active() -> None:
    """Drop this process's cached answer for the active version (the next asks the resolver)."""
    global _active
    _active = None


def resolve_active() -> ModelRef:
    """The active version's bundle, the resolver asked once per process (see module doc).

    Give the returned ref to :func:`confirm_active`; its ``version`` is the registry's
    version, or None when the fallback (settings.MODEL_BUNDLE) serves.
    """
    global _active
    resolver = _resolver
    if resolver is None:
        return fallback()
    cached = _active
    if cached is not None and cached[0] is resolver:
        ref = cached[1]
    else:
        ref = resolver(None)  # raises (no active version) without caching anything
        if _active_check is not None:  # cached only where it can be confirmed
            _active = (resolver, ref)
    # fallback() afresh each time: settings.MODEL_BUNDLE is read, not cached
    return ref if ref is not None else fallback()


def confirm_active(ref: ModelRef) -> bool:
    """Inside a transaction: is ``ref`` (from :func:`resolve_active`) still the active one?

    True without a registered check (no registry: settings.MODEL_BUNDLE is not governed).
    """
    check = _active_check
    return True if check is None or _resolver is None else check(ref)


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
