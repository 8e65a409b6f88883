"""Readiness checks behind /readyz: database, broker, storage, model bundle.

Each check returns None when healthy or a short reason string. They are plain
functions so the run orchestrator and tests can call them without HTTP.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from editplatform.celery import app


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'unreachable'}"
    return None


def check_broker() -> str | None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if settings.EMBEDDED_BROKER:
                folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
                folder.mkdir(parents=True, exist_ok=True)
                if not os.access(folder, os.W_OK):
                    return f"broker folder {folder} is not writable"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_storage() -> str | None:
    name = f"health/{uuid.uuid4().hex}.probe"
    try:
        saved = default_storage.save(name, ContentFile(b"ok"))
        default_storage.delete(saved)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_bundle_lock = threading.Lock()
_bundle_cache: dict[tuple, str | None] = {}


def _bundle_fingerprint(path: Path) -> tuple:
    manifest = path / "manifest.json"
    stats = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(path.iterdir()) if p.is_file()]
    return (str(manifest), tuple(stats))


def check_model_bundle() -> str | None:
    """Verify the bundle's manifest and file hashes; cached until a file changes."""
    path = Path(settings.MODEL_BUNDLE)
    if not (path / "manifest.json").exists():
        return f"no model bundle at {path} (run `make run` once, or set MODEL_BUNDLE)"
    try:
        key = _bundle_fingerprint(path)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    with _bundle_lock:
        if key in _bundle_cache:
            return _bundle_cache[key]
        from inversion.bundle import verify_bundle_files

        try:
            verify_bundle_files(path)
            result = None
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        _bundle_cache.clear()
        _bundle_cache[key] = result
        return result


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "model_bundle": check_model_bundle,
}


def _safe(check) -> str:
    """A check that itself breaks reports why, instead of turning /readyz into a 500."""
    try:
        return check() or "ok"
    except Exception as exc:
        return f"check failed: {type(exc).__name__}: {exc}"


def run_checks() -> dict[str, str]:
    return {name: _safe(check) for name, check in CHECKS.items()}
