"""Envelope encryption of stored artifacts: per-artifact data keys, sealed in chunks.

Why: the platform must be able to erase a photo (retention, data-subject requests)
while its audit log stays provable. Every artifact is encrypted with its own random
256-bit data key (AES-256-GCM); the data key is stored only *wrapped* by a
key-encryption key (KEK) that never lives in the database. Destroying the wrapped key
destroys the bytes (crypto-shredding), wherever copies of the ciphertext remain.

Sealed format (all integers big-endian)::

    header  = b"SLE1" | key_id (16 bytes) | nonce prefix (8 bytes) | chunk size (4 bytes)
    chunk i = AES-256-GCM(data key, nonce = prefix | i (4 bytes), plaintext chunk,
                          aad = header | artifact id | i (4 bytes) | last flag (1 byte))

Chunks let a download decrypt on the fly yet never hand out an unauthenticated byte:
each chunk is verified before any of its plaintext is returned, the index stops
reordering, the last flag stops truncation, the artifact id (associated data) stops a
ciphertext being swapped for another artifact's. Any mismatch raises
:class:`TamperedCiphertext`, never garbage.

The KEK sits behind a small interface (:class:`KeyWrapper`): the default reads a 32-byte
key from a file (``ARTIFACT_KEK_FILE``; generated once into var/ outside production),
operators with a KMS name their own class in ``ARTIFACT_KEY_WRAPPER``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import secrets
import struct
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SLE1"
KEY_ID_BYTES = 16
PREFIX_BYTES = 8
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + PREFIX_BYTES + 4
TAG_BYTES = 16
CHUNK_SIZE = 64 * 1024
DATA_KEY_BYTES = 32


class CryptoError(Exception):
    """Base of the envelope-encryption errors."""


class TamperedCiphertext(CryptoError):
    """The stored ciphertext (or its header) does not authenticate: altered or truncated."""


class KeyUnavailable(CryptoError):
    """The key-encryption key is missing, wrong, or cannot unwrap this data key."""


# --- the key-encryption key ----------------------------------------------------------


class KeyWrapper(Protocol):
    """What a KEK provider offers (``ARTIFACT_KEY_WRAPPER`` names the class).

    ``kek_id`` names the KEK in use (stored next to each wrapped key, so a rotation can
    tell which KEK wrapped what); ``wrap``/``unwrap`` bind the data key to ``context``
    (the artifact id), so a wrapped key copied onto another artifact does not unwrap.
    """

    kek_id: str

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


class FileKeyWrapper:
    """AES-256-GCM key wrapping with a KEK read from a file (base64 or 32 raw bytes)."""

    def __init__(self, path: str | Path | None = None):
        from django.conf import settings

        path = path or settings.ARTIFACT_KEK_FILE
        if not path:
            raise KeyUnavailable("set ARTIFACT_KEK_FILE: the artifacts' key-encryption key")
        self.path = Path(path)
        kek = load_kek(self.path)
        self._aead = AESGCM(kek)
        self.kek_id = "file:" + hashlib.sha256(b"styleledger kek id" + kek).hexdigest()[:16]

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, b"styleledger dek|" + context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], b"styleledger dek|" + context)
        except InvalidTag:
            raise KeyUnavailable("the key-encryption key cannot unwrap this data key") from None


def load_kek(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyUnavailable(f"cannot read the key-encryption key file {path}: {exc}") from None
    if len(raw) == DATA_KEY_BYTES:
        return raw
    try:
        kek = base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        kek = b""
    if len(kek) != DATA_KEY_BYTES:
        raise KeyUnavailable(f"{path} must hold 32 bytes (raw or base64) for AES-256")
    return kek


def ensure_dev_kek(path: Path) -> Path:
    """Create a KEK file once (0600) for a development machine (`make run`)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a concurrent process (web and worker
        # starting together) never reads a half-written key, and only one key wins.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(DATA_KEY_BYTES)) + b"\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path


@lru_cache(maxsize=4)
def _wrapper(class_path: str, kek_file: str, stamp: tuple | None) -> KeyWrapper:
    from django.utils.module_loading import import_string

    return import_string(class_path)()


def _file_stamp(kek_file) -> tuple | None:
    """What identifies the KEK file's current content (None when it cannot be stat'ed).

    Part of the cache key: a KEK file that becomes unreadable, or is restored or
    replaced (a rotated secret mount), is read again on next use, so a long-running
    worker neither keeps serving a KEK an operator withdrew nor stays broken after the
    file is back (jobs retry meanwhile: editplatform.jobs.tasks).
    """
    if not kek_file:
        return None
    try:
        st = os.stat(kek_file)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)


def key_wrapper() -> KeyWrapper:
    """The configured KEK provider (cached per setting values and KEK file state)."""
    from django.conf import settings

    if (
        not settings.PRODUCTION
        and settings.ARTIFACT_KEK_FILE
        and settings.ARTIFACT_KEY_WRAPPER.endswith(".FileKeyWrapper")
    ):
        ensure_dev_kek(Path(settings.ARTIFACT_KEK_FILE))
    kek_file = settings.ARTIFACT_KEK_FILE
    return _wrapper(settings.ARTIFACT_KEY_WRAPPER, str(kek_file), _file_stamp(kek_file))


def check_kek(app_configs=None, **kwargs):
    """System check: production needs a key-encryption key from outside the database."""
    from django.conf import settings
    from django.core import checks

    if (
        settings.PRODUCTION
        and settings.ARTIFACT_KEY_WRAPPER.endswith(".FileKeyWrapper")
        and not settings.ARTIFACT_KEK_FILE
    ):
        return [
            checks.Error(
                "no key-encryption key for stored artifacts",
                hint="set ARTIFACT_KEK_FILE (32 bytes, base64) or ARTIFACT_KEY_WRAPPER (a KMS)",
                id="core.E101",
            )
        ]
    return []


# --- data keys and the keyed commitment ----------------------------------------------


def new_data_key() -> tuple[bytes, bytes]:
    """A fresh (data key, key id)."""
    return secrets.token_bytes(DATA_KEY_BYTES), secrets.token_bytes(KEY_ID_BYTES)


def commitment(data_key: bytes, plaintext: bytes) -> str:
    """HMAC-SHA256 of the plaintext under a key derived from the data key.

    What erasure records instead of a plain hash: once the data key is shredded, nobody
    can compute it for a copy of the image, so the record cannot confirm the copy.
    """
    mac_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"styleledger commitment"
    ).derive(data_key)
    return hmac.new(mac_key, plaintext, hashlib.sha256).hexdigest()


def new_salt() -> bytes:
    """A per-artifact secret for :func:`keyed_hash` (kept beside the wrapped data key)."""
    return secrets.token_bytes(DATA_KEY_BYTES)


def keyed_hash(salt: bytes, name: str, value: str) -> str:
    """HMAC-SHA256 of a hash the log would otherwise record in the clear (the upload's
    SHA-256, the parameter hash that binds the original's), under the artifact's salt.

    ``name`` (the payload field) separates domains, so one keyed value never stands for
    another field's. Without the salt (shredded with the key row) nobody can compute it
    from a copy of the image.
    """
    message = b"styleledger keyed v1|" + name.encode() + b"|" + value.encode()
    return hmac.new(bytes(salt), message, hashlib.sha256).hexdigest()


# --- sealing ---------------------------------------------------------------------------


def _chunk_aad(header: bytes, artifact_id: bytes, index: int, last: bool) -> bytes:
    return header + artifact_id + struct.pack(">IB", index, 1 if last else 0)


def seal(plaintext: bytes, data_key: bytes, key_id: bytes, artifact_id: str) -> bytes:
    """Encrypt ``plaintext`` for ``artifact_id`` (its associated data)."""
    prefix = os.urandom(PREFIX_BYTES)
    header = MAGIC + key_id + prefix + struct.pack(">I", CHUNK_SIZE)
    aead, aid = AESGCM(data_key), artifact_id.encode()
    out = [header]
    count = max(1, -(-len(plaintext) // CHUNK_SIZE))
    for index in range(count):
        chunk = plaintext[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
        nonce = prefix + struct.pack(">I", index)
        last = index == count - 1
        out.append(aead.encrypt(nonce, chunk, _chunk_aad(header, aid, index, last)))
    return b"".join(out)


def sealed_size(plaintext_size: int) -> int:
    return HEADER_BYTES + max(1, -(-plaintext_size // CHUNK_SIZE)) * TAG_BYTES + plaintext_size


def is_sealed(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


def header_key_id(header: bytes) -> bytes:
    """The key id a sealed blob names (raises TamperedCiphertext on a foreign header)."""
    if len(header) < HEADER_BYTES or not is_sealed(header):
        raise TamperedCiphertext("not a sealed artifact (bad header)")
    return header[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]


class DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext of a sealed file, verified chunk by chunk.

    Only authenticated plaintext is ever returned; a bad chunk raises
    :class:`TamperedCiphertext` (and a truncated file too: the last chunk is flagged).
    """

    def __init__(self, handle, data_key: bytes, key_id: bytes, artifact_id: str):
        super().__init__()
        self._handle = handle
        self._header = handle.read(HEADER_BYTES)
        if header_key_id(self._header) != key_id:
            raise TamperedCiphertext("the sealed artifact names another data key")
        (self._chunk,) = struct.unpack(">I", self._header[-4:])
        if not 0 < self._chunk <= 64 * 1024 * 1024:
            raise TamperedCiphertext("the sealed artifact's chunk size is invalid")
        self._prefix = self._header[len(MAGIC) + KEY_ID_BYTES : -4]
        self._aead, self._aid = AESGCM(data_key), artifact_id.encode()
        self._index, self._buffer, self._done = 0, b"", False
        self._pending = self._read_sealed()
        self._fill()  # the first chunk is checked before anyone reads: wrong key fails early

    def _read_sealed(self) -> bytes:
        want, parts = self._chunk + TAG_BYTES, []
        while want:
            part = self._handle.read(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
        return b"".join(parts)

    def _fill(self) -> None:
        if self._done:
            return
        current, following = self._pending, self._read_sealed()
        last = not following
        nonce = self._prefix + struct.pack(">I", self._index)
        try:
            plain = self._aead.decrypt(
                nonce, current, _chunk_aad(self._header, self._aid, self._index, last)
            )
        except (InvalidTag, ValueError):
            raise TamperedCiphertext(
                f"chunk {self._index} of the sealed artifact does not authenticate"
            ) from None
        self._buffer += plain
        self._index += 1
        self._pending = following
        self._done = last

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer and not self._done:
            self._fill()
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer]
            self._buffer = b""
            while not self._done:
                self._fill()
                parts.append(self._buffer)
                self._buffer = b""
            return b"".join(parts)
        return super().read(size)

    def close(self) -> None:
        try:
            self._handle.close()
        finally:
            super().close()


def unseal(sealed: bytes, data_key: bytes, key_id: bytes, artifact_id: str) -> bytes:
    """The plaintext of a whole sealed blob (raises TamperedCiphertext)."""
    return DecryptingReader(io.BytesIO(sealed), data_key, key_id, artifact_id).read()
