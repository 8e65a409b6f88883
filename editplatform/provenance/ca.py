"""A development certificate chain for C2PA signing: root -> intermediate -> signer.

C2PA validators require, for the signing certificate: X.509 v3, not a CA, digitalSignature
key usage, an extended key usage of emailProtection or documentSigning (never anyEKU),
and an ECDSA/EdDSA/RSA-PSS key; the chain in the manifest is signer + intermediate (the
root is the verifier's trust anchor and is never embedded). Production supplies the
operator's own files through C2PA_SIGNING_KEY_FILE / C2PA_CERT_CHAIN_FILE /
C2PA_TRUST_ANCHORS_FILE; development generates this chain once, into var/.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_FILE = "signer.key"
CHAIN_FILE = "chain.pem"
ROOT_FILE = "root.pem"


@dataclass(frozen=True)
class ChainFiles:
    key: Path
    chain: Path
    root: Path


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: x509.Name,
    key,
    issuer: x509.Name,
    issuer_key,
    *,
    ca: bool,
    path_length: int | None,
    days: int,
    issuer_cert: x509.Certificate | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def generate_chain(
    directory: Path, *, organisation: str = "StyleLedger development", days: int = 3650
) -> ChainFiles:
    """Write a fresh root, intermediate and signer (P-256, ES256) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{organisation} C2PA root", organisation)
    root = _certificate(root_name, root_key, root_name, root_key, ca=True, path_length=1, days=days)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter_name = _name(f"{organisation} C2PA intermediate", organisation)
    inter = _certificate(
        inter_name,
        inter_key,
        root_name,
        root_key,
        ca=True,
        path_length=0,
        days=days,
        issuer_cert=root,
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = _certificate(
        _name(f"{organisation} output signer", organisation),
        signer_key,
        inter_name,
        inter_key,
        ca=False,
        path_length=None,
        days=days,
        issuer_cert=inter,
    )
    files = ChainFiles(directory / KEY_FILE, directory / CHAIN_FILE, directory / ROOT_FILE)
    key_pem = signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    files.chain.write_bytes(_pem(signer) + _pem(inter))
    files.root.write_bytes(_pem(root))
    return files


def ensure_chain(directory: Path) -> ChainFiles:
    """The chain in `directory`, generated on first use (development only)."""
    files = ChainFiles(directory / KEY_FILE, directory / CHAIN_FILE, directory / ROOT_FILE)
    if files.key.exists() and files.chain.exists() and files.root.exists():
        return files
    return generate_chain(directory)
