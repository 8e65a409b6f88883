"""`manage.py bench_artifact_crypto [--repeat N]`: what envelope encryption costs per artifact.

Measures, for typical artifact sizes (a demo-bundle output, a latent, a 256² and a
1024² PNG, a 12-megapixel photo as PNG): AES-256-GCM sealing and streamed unsealing
alone, and the whole ``artifacts.store`` + ``artifacts.read`` on the configured database
and storage against the plaintext path they replaced (exists, save, get-or-create; open
and read). Writes into a throwaway storage folder and deletes its rows afterwards.
Figures are medians (ms). Run on a quiet machine; the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.test import override_settings

from editplatform.core import crypto
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact, ArtifactKey, storage_name

SIZES = {
    "demo output (3 KB)": 3_000,
    "latent (37 KB)": 36_864,
    "256² PNG (150 KB)": 150_000,
    "1024² PNG (2.5 MB)": 2_500_000,
    "12 MP photo PNG (20 MB)": 20_000_000,
}


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _plain_store(data: bytes) -> Artifact:
    """The pre-encryption path: content-addressed plaintext file and its row."""
    digest = artifacts.sha256_hex(data)
    name = storage_name(digest)
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))
    artifact, _ = Artifact.objects.get_or_create(
        sha256=digest, defaults={"media_type": "application/octet-stream", "size": len(data)}
    )
    return artifact


def _plain_read(artifact: Artifact) -> bytes:
    with default_storage.open(artifact.storage_name, "rb") as handle:
        return handle.read()


class Command(BaseCommand):
    help = "Measure envelope encryption per artifact (seal/unseal, store/read vs plaintext)."

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=7)

    def handle(self, *args, repeat: int = 7, **options):
        rows = []
        with tempfile.TemporaryDirectory(prefix="bench-crypto-") as root:
            storages = {
                "default": {
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": root},
                },
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            }
            with override_settings(STORAGES=storages):
                for label, size in SIZES.items():
                    rows.append((label, *self._measure(size, repeat)))
        self.stdout.write(
            "| artifact | seal | unseal (streamed) | store: plaintext -> encrypted "
            "| read: plaintext -> encrypted |"
        )
        self.stdout.write("|---|---|---|---|---|")
        for label, seal, unseal, plain_store, enc_store, plain_read, enc_read in rows:
            self.stdout.write(
                f"| {label} | {seal:.2f} ms | {unseal:.2f} ms | {plain_store:.2f} -> "
                f"{enc_store:.2f} ms | {plain_read:.2f} -> {enc_read:.2f} ms |"
            )

    def _measure(self, size: int, repeat: int):
        data_key, key_id = crypto.new_data_key()
        seal, unseal = [], []
        for _ in range(repeat):
            data = os.urandom(size)
            start = time.perf_counter()
            sealed = crypto.seal(data, data_key, key_id, "a" * 64)
            seal.append(time.perf_counter() - start)
            start = time.perf_counter()
            crypto.unseal(sealed, data_key, key_id, "a" * 64)
            unseal.append(time.perf_counter() - start)
        plain_store, enc_store, plain_read, enc_read, made = [], [], [], [], []
        for _ in range(repeat):
            data = os.urandom(size)
            start = time.perf_counter()
            plain = _plain_store(data)
            plain_store.append(time.perf_counter() - start)
            start = time.perf_counter()
            _plain_read(plain)
            plain_read.append(time.perf_counter() - start)
            data = os.urandom(size)
            start = time.perf_counter()
            sealed_artifact = artifacts.store(data, "application/octet-stream")
            enc_store.append(time.perf_counter() - start)
            start = time.perf_counter()
            artifacts.read(sealed_artifact)
            enc_read.append(time.perf_counter() - start)
            made += [plain.sha256, sealed_artifact.sha256]
        ArtifactKey.objects.filter(sha256__in=made).delete()
        Artifact.objects.filter(sha256__in=made).delete()
        return tuple(
            _median_ms(s) for s in (seal, unseal, plain_store, enc_store, plain_read, enc_read)
        )
