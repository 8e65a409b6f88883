"""Readiness checks behind /readyz: database, broker, storage, model bundle, consumers.

Each check returns None when healthy or a short reason string. They are plain
functions so the run orchestrator and tests can call them without HTTP.

`consumers` is checked only for the queues named in READYZ_CONSUMER_QUEUES (the
compose deployment names `gpu,default`): a queue nobody consumes silently stops jobs
or the sweeper and checkpoints, so readiness says which queue has no worker. Asking
the workers costs one broadcast round trip (READYZ_CONSUMER_TIMEOUT seconds), hence
opt-in. `consumers_by_queue` and `queue_depths` are shared with the metrics endpoint.
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
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreachable"
        return f"{type(exc).__name__}: {first_line}"
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
    stats = [
        (p.name, p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(path.iterdir())
        if p.is_file()
    ]
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


def consumers_by_queue(timeout: float | None = None) -> dict[str, int]:
    """How many live workers consume each queue, from a broadcast to all workers."""
    from editplatform.celery import app

    wait = settings.READYZ_CONSUMER_TIMEOUT if timeout is None else timeout
    replies = app.control.inspect(timeout=wait).active_queues() or {}
    counts: dict[str, int] = {queue.name: 0 for queue in app.conf.task_queues or ()}
    for queues in replies.values():
        for name in {queue["name"] for queue in queues}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def queue_depths() -> dict[str, int]:
    """Messages waiting in each declared queue (passive declare: creates nothing)."""
    from editplatform.celery import app

    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues or ():
            try:
                depths[queue.name] = int(
                    channel.queue_declare(queue=queue.name, passive=True).message_count
                )
            except Exception:  # a queue never declared yet holds nothing
                depths[queue.name] = 0
    return depths


def check_consumers() -> str | None:
    wanted = list(settings.READYZ_CONSUMER_QUEUES)
    if not wanted:
        return None
    counts = consumers_by_queue()
    missing = [name for name in wanted if not counts.get(name)]
    if missing:
        return "no consumer on queue " + ", ".join(missing)
    return None


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "model_bundle": check_model_bundle,
}


def active_checks() -> dict:
    """The checks to run: consumers only where the deployment asked for it."""
    checks = dict(CHECKS)
    if settings.READYZ_CONSUMER_QUEUES:
        checks["consumers"] = check_consumers
    return checks


def _safe(check) -> str:
    """A check that itself breaks reports why, instead of turning /readyz into a 500."""
    try:
        return check() or "ok"
    except Exception as exc:
        return f"check failed: {type(exc).__name__}: {exc}"


def run_checks() -> dict[str, str]:
    return {name: _safe(check) for name, check in active_checks().items()}
