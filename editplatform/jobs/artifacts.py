"""Content-addressed, encrypted artifact storage through Django's storage API.

An artifact's identity is the SHA-256 of its plaintext; its bytes are stored *sealed*
(:mod:`editplatform.core.crypto`: AES-256-GCM under a per-artifact data key, the
artifact id as associated data) at ``<sha256>.sealed``, the data key wrapped by the
key-encryption key in :class:`~editplatform.jobs.models.ArtifactKey`.

Writing is idempotent: one key row per hash (get-or-create), an existing ciphertext
sealed under that key is left alone, one sealed under a key that no longer exists (a
writer whose transaction rolled back) is replaced. So a retried worker or two jobs with
the same photo store the bytes once.

Reading handles both layouts while ``encrypt_artifacts`` migrates a deployment: a key
row with ``sealed_at`` means the ciphertext, otherwise the legacy plaintext file.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from editplatform.core import crypto
from editplatform.core.errors import DomainError
from editplatform.jobs.models import Artifact, ArtifactKey, sealed_name, storage_name

logger = logging.getLogger(__name__)


class ArtifactErased(DomainError):
    """The artifact was crypto-shredded: its bytes cannot be read any more (410)."""

    def __init__(self, artifact: Artifact):
        super().__init__(
            f"This artifact was {artifact.erased_under()}; its bytes no longer exist.",
            code="artifact_erased",
            status=410,
        )


class ArtifactUnreadable(DomainError):
    """The stored ciphertext does not authenticate or its key cannot be unwrapped."""

    def __init__(self, detail: str):
        super().__init__(
            f"The stored artifact failed its integrity check and is not served ({detail}).",
            code="artifact_integrity",
            status=409,
        )


class ArtifactKeysUnavailable(DomainError):
    """The key-encryption key cannot be used (missing file, KMS down): nothing is stored."""

    def __init__(self, detail: str):
        super().__init__(
            f"Stored images cannot be encrypted or decrypted right now ({detail}).",
            code="artifact_keys_unavailable",
            status=503,
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _context(digest: str) -> bytes:
    return b"artifact:" + digest.encode()


def data_key_row(digest: str, plaintext: bytes, *, sealed: bool = False) -> ArtifactKey:
    """The artifact's key row, created (with a fresh wrapped data key) if absent.

    One round trip for new content: the row is inserted unless one exists (``ON
    CONFLICT DO NOTHING``, which neither raises nor needs a savepoint inside the
    caller's transaction); only an existing one is read back.

    ``sealed``: a new row says "read the ciphertext" at once (new bytes: nobody reads
    them before the Artifact row exists; a reader that finds no ciphertext yet falls
    back to a legacy plaintext file). The migration creates rows unsealed instead and
    switches them once the ciphertext is verified.
    """
    wrapper = crypto.key_wrapper()
    data_key, key_id = crypto.new_data_key()
    now = timezone.now()
    row = ArtifactKey(
        sha256=digest,
        key_id=key_id.hex(),
        kek_id=wrapper.kek_id,
        wrapped=wrapper.wrap(data_key, _context(digest)),
        commitment=crypto.commitment(data_key, plaintext),
        salt=crypto.new_salt(),
        created_at=now,
        sealed_at=now if sealed else None,
    )
    if _insert_if_absent(row):
        return row
    return ArtifactKey.objects.get(sha256=digest)


def _insert_if_absent(row: ArtifactKey) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite >= 3.35)."""
    fields = ArtifactKey._meta.concrete_fields
    quote = connection.ops.quote_name
    pk = quote(ArtifactKey._meta.pk.column)
    sql = (
        f"INSERT INTO {quote(ArtifactKey._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({pk}) DO NOTHING RETURNING {pk}"
    )
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchone() is not None


def unwrap(key: ArtifactKey) -> bytes:
    return crypto.key_wrapper().unwrap(bytes(key.wrapped), _context(key.sha256))


def _sealed_under(name: str, key: ArtifactKey) -> bool:
    try:
        with default_storage.open(name, "rb") as handle:
            return crypto.header_key_id(handle.read(crypto.HEADER_BYTES)).hex() == key.key_id
    except (OSError, crypto.TamperedCiphertext):
        return False


def write_sealed(digest: str, data: bytes, key: ArtifactKey) -> None:
    """Write the ciphertext of ``data`` under ``key`` unless it is already there."""
    name = sealed_name(digest)
    if default_storage.exists(name):
        if _sealed_under(name, key):
            return
        default_storage.delete(name)  # sealed under a key that was rolled back
    blob = crypto.seal(data, unwrap(key), bytes.fromhex(key.key_id), digest)
    saved = default_storage.save(name, ContentFile(blob))
    if saved != name:  # someone else wrote it meanwhile (same key row, so same key)
        default_storage.delete(saved)


def write_blob(data: bytes) -> str:
    """Store ``data`` encrypted under its hash (if not there yet); return the hash.

    Storing bytes of an erased artifact again (the same photo uploaded anew) gives it a
    new key and ciphertext; :func:`revive` then clears its erased mark.
    """
    return write_blob_keyed(data)[0]


def write_blob_keyed(data: bytes) -> tuple[str, ArtifactKey | None]:
    """:func:`write_blob`, also returning the key row (its commitment, for the log);
    ``None`` only in the benchmark's plaintext layout, which has no key rows."""
    digest = sha256_hex(data)
    if getattr(settings, "BENCHMARK_PLAINTEXT_ARTIFACTS", False):
        return _write_plaintext_for_benchmark(digest, data), None
    try:
        key = data_key_row(digest, data, sealed=True)
        write_sealed(digest, data, key)
    except crypto.KeyUnavailable as exc:
        logger.error("artifact keys unavailable: %s", exc)
        raise ArtifactKeysUnavailable(str(exc)) from None
    if key.sealed_at is None:  # a row the migration created: switch reads over now
        ArtifactKey.objects.filter(pk=digest, sealed_at__isnull=True).update(
            sealed_at=timezone.now()
        )
    return digest, key


def _write_plaintext_for_benchmark(digest: str, data: bytes) -> str:
    """The pre-encryption layout (no key row, plaintext at ``<sha256>``), only under
    :mod:`editplatform.jobs.management.bench_plaintext_settings` (``bench_jobs
    --plaintext-artifacts``): the baseline the encryption cost is measured against."""
    name = storage_name(digest)
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # a concurrent writer stored the same bytes
            default_storage.delete(saved)
    return digest


def revive(artifact: Artifact) -> Artifact:
    """Clear the erased mark of an artifact whose bytes were just stored again (new key).

    Callers that get the Artifact row after :func:`write_blob` call it (``store`` does);
    the earlier erasure stays in the audit log.
    """
    if artifact.erased_at is not None:
        Artifact.objects.filter(pk=artifact.pk).update(
            erased_at=None, erasure_reason="", erasure_ref=""
        )
        artifact.erased_at, artifact.erasure_reason, artifact.erasure_ref = None, "", ""
    return artifact


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
    return revive(artifact)


def store_many(items) -> list[Artifact]:
    """:func:`store` for several ``(data, media_type, width, height)`` at once: their
    bytes one by one, their rows with one ``INSERT ... ON CONFLICT DO NOTHING`` and one
    SELECT instead of a get-or-create and its savepoint each (a worker's batch stores
    six outputs per job). Same rows, same idempotency."""
    items = list(items)
    digests = [write_blob(data) for data, *_ in items]
    fresh = {}
    for digest, (data, media_type, width, height) in zip(digests, items, strict=True):
        fresh.setdefault(
            digest,
            Artifact(
                sha256=digest, media_type=media_type, size=len(data), width=width, height=height
            ),
        )
    Artifact.objects.bulk_create(list(fresh.values()), ignore_conflicts=True)
    rows = Artifact.objects.in_bulk(list(fresh))
    return [revive(rows[digest]) for digest in digests]


def delete_blobs(digest: str) -> None:
    """Delete both layouts of an artifact's bytes (best effort; after commit)."""
    for name in (sealed_name(digest), storage_name(digest)):
        try:
            default_storage.delete(name)
        except OSError:  # pragma: no cover - best effort
            logger.warning("could not delete blob %s", name, exc_info=True)


def discard_blob_if_unreferenced(digest: str) -> None:
    """Remove stored bytes and key that no Artifact row refers to (cleanup after a rollback)."""
    if not Artifact.objects.filter(sha256=digest).exists():
        ArtifactKey.objects.filter(sha256=digest).delete()
        delete_blobs(digest)


def open_stream(artifact: Artifact):
    """A file-like object of the artifact's plaintext (decrypted on the fly when sealed).

    Raises :class:`ArtifactErased` (410) for a shredded artifact and
    :class:`ArtifactUnreadable` when the ciphertext or its key fails authentication: a
    reader never gets unauthenticated bytes.
    """
    if artifact.erased_at is not None:
        raise ArtifactErased(artifact)
    key = ArtifactKey.objects.filter(sha256=artifact.sha256, sealed_at__isnull=False).first()
    if key is None:  # legacy plaintext, not migrated yet
        return default_storage.open(artifact.storage_name, "rb")
    try:
        handle = default_storage.open(sealed_name(artifact.sha256), "rb")
    except FileNotFoundError:  # new key, ciphertext being written over a legacy file
        return default_storage.open(artifact.storage_name, "rb")
    try:
        return crypto.DecryptingReader(
            handle, unwrap(key), bytes.fromhex(key.key_id), artifact.sha256
        )
    except crypto.KeyUnavailable as exc:
        handle.close()
        logger.error("artifact %s: key unavailable: %s", artifact.sha256, exc)
        raise ArtifactKeysUnavailable(str(exc)) from None
    except crypto.CryptoError as exc:
        handle.close()
        logger.error("artifact %s failed its integrity check: %s", artifact.sha256, exc)
        raise ArtifactUnreadable(str(exc)) from None


def read(artifact: Artifact) -> bytes:
    """The whole plaintext, checked against the artifact's hash."""
    stream = open_stream(artifact)
    try:
        data = stream.read()
    except crypto.CryptoError as exc:
        logger.error("artifact %s failed its integrity check: %s", artifact.sha256, exc)
        raise ArtifactUnreadable(str(exc)) from None
    finally:
        stream.close()
    if sha256_hex(data) != artifact.sha256:
        raise ArtifactUnreadable("the bytes do not match the artifact's hash")
    return data
