"""Content-addressed artifact storage through Django's storage API.

Writing is idempotent: the name is derived from the SHA-256 of the bytes, an existing
file is left alone, and a concurrent writer that got a renamed copy (FileSystemStorage
never overwrites) removes its duplicate. So a retried worker or two jobs with the same
photo store the bytes once.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from editplatform.jobs.models import Artifact, storage_name

logger = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_blob(data: bytes) -> str:
    """Store ``data`` under its hash (if not there yet); return the hash."""
    digest = sha256_hex(data)
    name = storage_name(digest)
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # someone else wrote the same bytes meanwhile
            default_storage.delete(saved)
    return digest


def store(
    data: bytes, media_type: str, *, width: int | None = None, height: int | None = None
) -> Artifact:
    """Store bytes and their Artifact row (idempotent). Call inside or outside a transaction."""
    digest = write_blob(data)
    try:
        with transaction.atomic():
            artifact, _ = Artifact.objects.get_or_create(
                sha256=digest,
                defaults={
                    "media_type": media_type,
                    "size": len(data),
                    "width": width,
                    "height": height,
                },
            )
    except IntegrityError:  # a concurrent insert of the same hash
        artifact = Artifact.objects.get(sha256=digest)
    return artifact


def discard_blob_if_unreferenced(digest: str) -> None:
    """Remove stored bytes that no Artifact row refers to (cleanup after a rollback)."""
    if not Artifact.objects.filter(sha256=digest).exists():
        try:
            default_storage.delete(storage_name(digest))
        except OSError:  # pragma: no cover - best effort
            logger.warning("could not delete orphan blob %s", digest, exc_info=True)


def read(artifact: Artifact) -> bytes:
    with default_storage.open(artifact.storage_name, "rb") as handle:
        return handle.read()


def open_stream(artifact: Artifact):
    return default_storage.open(artifact.storage_name, "rb")
