"""The model, once per process.

Workers: :func:`get_inverter` loads and verifies the model bundle (settings.MODEL_BUNDLE)
and builds the Inverter the first time a job needs it, then reuses it for every job of
that worker process (the pool child; CUDA is initialised there, after the fork).

Web processes only need the edit catalog and the bundle version. :func:`get_catalog`
reads just ``manifest.json`` and ``catalog.json``, checks the catalog's SHA-256 against
the manifest and takes the manifest's SHA-256 as the version — the same version
``load_bundle`` reports — without reading hundreds of MB of weights. Both caches are
keyed by the manifest's modification time, so a replaced bundle is picked up.

Which bundle: :mod:`editplatform.jobs.model_source` answers (the model registry's
active version, or the version a job was pinned to at submit; settings.MODEL_BUNDLE
when nothing is registered). Several versions may be cached at once, so a worker
switches to a newly activated version, or runs a job pinned to the previous one,
without a restart. A bundle whose manifest hash is not the version asked for is
refused (:class:`~editplatform.jobs.model_source.UnknownModelVersion`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from editplatform.core.errors import DomainError
from editplatform.jobs import model_source
from editplatform.jobs.model_source import UnknownModelVersion  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_catalog_cache: dict[tuple[str, float], CatalogInfo] = {}
_inverter_cache: dict[tuple[str, float], object] = {}
MAX_CACHED_VERSIONS = 2  # the active version and one a queued job was pinned to


class ModelUnavailable(DomainError):
    """The configured model bundle cannot be used (missing, corrupt): an operator problem.

    A request that needs the model answers 503; the worker treats it as transient.
    """

    def __init__(self, problem: str):
        super().__init__(f"the model is not available: {problem}", "model_unavailable", status=503)
        self.problem = problem


@dataclass(frozen=True)
class CatalogInfo:
    version: str
    catalog: object  # inversion.editing.catalog.EditCatalog
    domain: object = None  # inversion.bundle_domain.BundleDomain (the default when undeclared)


def _bundle_key(version: str | None = None) -> tuple[Path, tuple[str, float], str | None]:
    return _key_of(model_source.resolve(version))


def _key_of(ref: model_source.ModelRef) -> tuple[Path, tuple[str, float], str | None]:
    path = Path(ref.path)
    manifest = path / "manifest.json"
    try:
        mtime = manifest.stat().st_mtime
    except OSError:
        raise ModelUnavailable(f"model bundle {path} has no manifest.json") from None
    return path, (str(path), mtime), ref.version


def _check_version(path: Path, found: str, expected: str | None) -> None:
    if expected is not None and found != expected:
        raise UnknownModelVersion(
            f"model version {expected[:12]} is not available: the bundle at {path} "
            f"is version {found[:12]}"
        )


def _remember(cache: dict, key, value) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > MAX_CACHED_VERSIONS:
        cache.pop(next(iter(cache)))


def get_catalog(version: str | None = None) -> CatalogInfo:
    """The edit catalog and version of the active bundle (or of ``version``), verified
    against the manifest."""
    return _catalog(*_bundle_key(version))


def get_active_catalog() -> tuple[CatalogInfo, model_source.ModelRef]:
    """What a new job is pinned to: the active bundle's catalog, and the registry's answer.

    The registry's answer is cached per process (:func:`model_source.resolve_active`):
    pass the second value to :func:`model_source.confirm_active` inside the job's
    transaction, and call :func:`model_source.forget_active` and ask again when it
    says the version is no longer active.
    """
    ref = model_source.resolve_active()
    return _catalog(*_key_of(ref)), ref


def _catalog(path: Path, key: tuple[str, float], expected: str | None) -> CatalogInfo:
    from inversion.bundle import CATALOG_FILE, MANIFEST_NAME
    from inversion.editing.catalog import EditCatalog
    from inversion.errors import EditError

    cached = _catalog_cache.get(key)
    if cached is not None:
        _check_version(path, cached.version, expected)
        return cached
    with _lock:
        raw = (path / MANIFEST_NAME).read_bytes()
        try:
            entry = json.loads(raw)["files"][CATALOG_FILE]
            data = (path / CATALOG_FILE).read_bytes()
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelUnavailable(f"model bundle {path}: cannot read its catalog: {exc}") from None
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise ModelUnavailable(
                f"model bundle {path}: {CATALOG_FILE} does not match the manifest's hash"
            )
        try:
            catalog = EditCatalog.from_json(data)
        except EditError as exc:
            raise ModelUnavailable(f"model bundle {path}: {exc}") from None
        info = CatalogInfo(
            version=hashlib.sha256(raw).hexdigest(),
            catalog=catalog,
            domain=_declared_domain(path, raw),
        )
        _check_version(path, info.version, expected)
        _remember(_catalog_cache, key, info)
        return info


def _declared_domain(path: Path, raw: bytes):
    """The manifest's domain (what the form tells requesters); the worker verifies the rest."""
    from inversion.bundle_domain import BundleDomain, default_domain
    from inversion.errors import ConfigError

    manifest = json.loads(raw)
    try:
        size = int(manifest["configs"]["generator"]["size"])
        declared = manifest.get("domain")
        if declared is None:
            return default_domain(size)
        return BundleDomain.from_dict(declared)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelUnavailable(f"model bundle {path}: its domain is invalid: {exc}") from None


def configure_torch() -> None:
    """Apply JOB_TORCH_THREADS, after starting the fused scan's numba thread pool.

    Why first: numba's OpenMP threading layer sets OpenMP's thread count to all cores
    when its pool starts (at the first fused scan), and torch shares that OpenMP runtime,
    so a worker told to use one thread silently ran every later op on two — which cost
    each job of a batch several times the CPU of its ops (measured: the domain gate's
    SSIM 0.3 ms -> 90 ms, alignment 40 -> 150 ms) and made two workers fight over cores.
    Starting the pool here, then setting torch's count, keeps the setting."""
    threads = settings.JOB_TORCH_THREADS
    if threads:
        import torch

        try:
            import numba
        except ImportError:  # no fused scan, no pool
            pass
        else:
            numba.get_num_threads()  # starts the pool (and resets OpenMP's count)
        torch.set_num_threads(threads)


def get_inverter(version: str | None = None):
    """The worker process's Inverter for the active bundle (or ``version``), verified and
    loaded once per version."""
    from inversion.bundle import load_bundle
    from inversion.errors import BundleError
    from inversion.inverter import Inverter

    path, key, expected = _bundle_key(version)
    cached = _inverter_cache.get(key)
    if cached is not None:
        _check_version(path, cached.version, expected)
        return cached
    with _lock:
        cached = _inverter_cache.get(key)
        if cached is not None:
            _check_version(path, cached.version, expected)
            return cached
        configure_torch()
        try:
            bundle = load_bundle(path)
        except BundleError as exc:
            raise ModelUnavailable(f"model bundle {path}: {exc}") from None
        _check_version(path, bundle.version, expected)
        device = None if settings.JOB_DEVICE in ("", "auto") else settings.JOB_DEVICE
        # Batching workers pad every pass to JOB_BATCH_SIZE with batch-invariant kernels,
        # so a job's outputs do not depend on which jobs shared its batch.
        batch = settings.JOB_BATCH_SIZE
        inverter = Inverter(bundle, device=device, batch_size=max(batch, 1), fixed_batch=batch > 1)
        logger.info(
            "model bundle %s loaded (version %s) on %s", path, bundle.version, inverter.device
        )
        _remember(_inverter_cache, key, inverter)
        return inverter
