"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519).

A checkpoint commits to a tree size and root hash:

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, base64>\\n

It is signed as a note (https://c2sp.org/signed-note): the text, a blank line, and
one line per signature, `— <key name> <base64(key id || Ed25519 signature)>`, where
key id = the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). Public
keys are exchanged as verifier keys, `<name>+<key id hex>+<base64(0x01 || key)>`,
the format Go's `golang.org/x/mod/sumdb/note` and other tlog tools read.

Keys live outside the database: a PEM file (AUDIT_SIGNING_KEY_FILE), an environment
variable (AUDIT_SIGNING_KEY: PEM text or a `PRIVATE+KEY+...` note key), or, in
development only, a key generated once into the var directory. No Django imports:
the offline verifier uses this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
_NAME = re.compile(r"^[^\s+]+$")
_SIG_PREFIX = "\u2014 "  # em dash and space
MAX_NOTE_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint or note is malformed, or no trusted signature verifies it."""


class SigningKeyError(CheckpointError):
    """A key is malformed or missing."""


# --- keys -----------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not name or not _NAME.match(name):
        raise SigningKeyError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return struct.unpack(">I", digest[:4])[0]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return _raw_public(self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.raw)

    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
            return True
        except InvalidSignature:
            return False

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise SigningKeyError("a verifier key reads <name>+<key id hex>+<base64 key>")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            blob = base64.b64decode(encoded, validate=True)
            expected_id = int(hex_id, 16)
        except (binascii.Error, ValueError):
            raise SigningKeyError("verifier key is not valid hex/base64") from None
        if len(hex_id) != 8 or len(blob) != 33 or blob[0] != ALG_ED25519:
            raise SigningKeyError("verifier key is not an Ed25519 key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(blob[1:]))
        if verifier.key_id != expected_id:
            raise SigningKeyError("verifier key id does not match its name and key")
        return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self):
        _check_name(self.name)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())


def _private_from_text(text: str | bytes, name: str) -> Signer:
    data = text.encode() if isinstance(text, str) else text
    stripped = data.strip()
    if stripped.startswith(b"PRIVATE+KEY+"):
        parts = stripped.decode().split("+", 4)
        if len(parts) != 5:
            raise SigningKeyError("a note private key reads PRIVATE+KEY+<name>+<id>+<base64 key>")
        try:
            blob = base64.b64decode(parts[4], validate=True)
        except binascii.Error:
            raise SigningKeyError("note private key is not valid base64") from None
        if len(blob) != 33 or blob[0] != ALG_ED25519:
            raise SigningKeyError("note private key is not an Ed25519 key")
        return Signer(_check_name(parts[2]), Ed25519PrivateKey.from_private_bytes(blob[1:]))
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("signing key is not an Ed25519 key")
    return Signer(name, key)


def load_signer(
    *,
    name: str,
    key_file: str | os.PathLike | None = None,
    key_text: str | None = None,
    dev_key_path: str | os.PathLike | None = None,
) -> Signer:
    """The log's signing key: from a file, from text, or (development) generated once.

    `dev_key_path` is only honoured when neither file nor text is given; pass None in
    production so a missing key is an error instead of a silently generated one.
    """
    if key_file:
        path = Path(key_file)
        try:
            return _private_from_text(path.read_bytes(), name)
        except OSError as exc:
            raise SigningKeyError(f"cannot read signing key file {path}: {exc.strerror}") from None
    if key_text:
        return _private_from_text(key_text, name)
    if dev_key_path is None:
        raise SigningKeyError(
            "no audit signing key: set AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY"
        )
    path = Path(dev_key_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        signer = Signer.generate(name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read its key below
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(signer.private_pem())
            return signer
    return _private_from_text(path.read_bytes(), name)


def load_verifier(spec: str, name: str | None = None) -> Verifier:
    """A verifier key given as vkey text, or a file holding a vkey or a PEM public key."""
    text = spec.strip()
    if "+" in text and "\n" not in text and not Path(text).exists():
        return Verifier.from_vkey(text)
    path = Path(text)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read public key {spec!r}: {exc.strerror}") from None
    if b"-----BEGIN" not in content:
        return Verifier.from_vkey(content.decode("utf-8", "replace"))
    try:
        key = serialization.load_pem_public_key(content)
    except ValueError as exc:
        raise SigningKeyError(f"{spec}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{spec}: not an Ed25519 public key")
    if name is None:
        raise SigningKeyError("a PEM public key needs the log's key name (its origin)")
    return Verifier(_check_name(name), key)


# --- checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint origin must be one non-empty line")
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not lines[0]:
            raise CheckpointError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise CheckpointError(f"checkpoint tree size {size_text!r} is not a decimal number")
        try:
            root_hash = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointError("checkpoint root hash is not base64") from None
        if len(root_hash) != 32:
            raise CheckpointError("checkpoint root hash is not 32 bytes")
        if any(not line for line in extensions):
            raise CheckpointError("blank line inside checkpoint text")
        return cls(origin, int(size_text), root_hash, tuple(extensions))


def sign_note(text: str, signer: Signer) -> str:
    if not text.endswith("\n") or "\n\n" in text:
        raise CheckpointError("note text must end with a newline and contain no blank line")
    signature = signer.sign(text.encode("utf-8"))
    blob = struct.pack(">I", signer.verifier.key_id) + signature
    return f"{text}\n{_SIG_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """Return the note's text if `verifier` signed it; otherwise raise CheckpointError."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError("note too large")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise CheckpointError("malformed note: no signature block")
    text, signature_block = note[: split + 1], note[split + 2 :]
    found_any = False
    for line in signature_block[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"malformed signature line {line!r}")
        try:
            name, encoded = line[len(_SIG_PREFIX) :].split(" ")
            blob = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise CheckpointError(f"malformed signature line {line!r}") from None
        if len(blob) < 5:
            raise CheckpointError("signature too short")
        found_any = True
        (signature_key_id,) = struct.unpack(">I", blob[:4])
        if name == verifier.name and signature_key_id == verifier.key_id:
            if verifier.verify(blob[4:], text.encode("utf-8")):
                return text
            raise CheckpointError(
                f"signature by {name} does not verify: the checkpoint was altered or forged"
            )
    if not found_any:
        raise CheckpointError("note has no signatures")
    raise CheckpointError(f"no signature by the trusted key {verifier.name}+{verifier.key_id:08x}")


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
