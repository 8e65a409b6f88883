"""The model, once per process.

Workers: :func:`get_inverter` loads and verifies the model bundle (settings.MODEL_BUNDLE)
and builds the Inverter the first time a job needs it, then reuses it for every job of
that worker process (the pool child; CUDA is initialised there, after the fork).

Web processes only need the edit catalog and the bundle version. :func:`get_catalog`
reads just ``manifest.json`` and ``catalog.json``, checks the catalog's SHA-256 against
the manifest and takes the manifest's SHA-256 as the version — the same version
``load_bundle`` reports — without reading hundreds of MB of weights. Both caches are
keyed by the manifest's modification time, so a replaced bundle is picked up.
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

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_catalog_cache: dict[tuple[str, float], CatalogInfo] = {}
_inverter_cache: dict[tuple[str, float], object] = {}


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


def _bundle_key() -> tuple[Path, tuple[str, float]]:
    path = Path(settings.MODEL_BUNDLE)
    manifest = path / "manifest.json"
    try:
        mtime = manifest.stat().st_mtime
    except OSError:
        raise ModelUnavailable(f"model bundle {path} has no manifest.json") from None
    return path, (str(path), mtime)


def get_catalog() -> CatalogInfo:
    """The bundle's edit catalog and version, verified against the manifest."""
    from inversion.bundle import CATALOG_FILE, MANIFEST_NAME
    from inversion.editing.catalog import EditCatalog
    from inversion.errors import EditError

    path, key = _bundle_key()
    cached = _catalog_cache.get(key)
    if cached is not None:
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
        _catalog_cache.clear()
        _catalog_cache[key] = info
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
    threads = settings.JOB_TORCH_THREADS
    if threads:
        import torch

        torch.set_num_threads(threads)


def get_inverter():
    """The worker process's Inverter (bundle verified and loaded once)."""
    from inversion.bundle import load_bundle
    from inversion.errors import BundleError
    from inversion.inverter import Inverter

    path, key = _bundle_key()
    cached = _inverter_cache.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _inverter_cache.get(key)
        if cached is not None:
            return cached
        configure_torch()
        try:
            bundle = load_bundle(path)
        except BundleError as exc:
            raise ModelUnavailable(f"model bundle {path}: {exc}") from None
        device = None if settings.JOB_DEVICE in ("", "auto") else settings.JOB_DEVICE
        inverter = Inverter(bundle, device=device)
        logger.info(
            "model bundle %s loaded (version %s) on %s", path, bundle.version, inverter.device
        )
        _inverter_cache.clear()
        _inverter_cache[key] = inverter
        return inverter
