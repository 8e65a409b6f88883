"""Where the C2PA key, chain and trust anchors come from (settings, or the dev CA)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from editplatform.provenance import ca
from editplatform.provenance.manifest import SigningMaterial


def _configured() -> tuple[Path, Path, Path] | None:
    names = ("C2PA_SIGNING_KEY_FILE", "C2PA_CERT_CHAIN_FILE", "C2PA_TRUST_ANCHORS_FILE")
    values = [getattr(settings, name, None) for name in names]
    if all(values):
        return tuple(Path(v) for v in values)  # type: ignore[return-value]
    if any(values) or settings.PRODUCTION:
        missing = [n for n, v in zip(names, values, strict=True) if not v]
        raise ImproperlyConfigured(
            f"C2PA signing needs {', '.join(missing)} "
            "(the development CA is never used in production)"
        )
    return None


@lru_cache(maxsize=1)
def _files() -> tuple[Path, Path, Path]:
    configured = _configured()
    if configured is not None:
        return configured
    files = ca.ensure_chain(Path(settings.PROVENANCE_DEV_CA_DIR))
    return files.key, files.chain, files.root


def material() -> SigningMaterial:
    key, chain, _ = _files()
    try:
        return SigningMaterial(key.read_bytes(), chain.read_bytes(), settings.C2PA_TSA_URL)
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read the C2PA key or chain: {exc}") from exc


def trust_anchors() -> bytes:
    try:
        return _files()[2].read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read C2PA_TRUST_ANCHORS_FILE: {exc}") from exc


@receiver(setting_changed)
def _forget(setting, **kwargs):
    if setting.startswith("C2PA_") or setting.startswith("PROVENANCE_") or setting == "PRODUCTION":
        _files.cache_clear()
