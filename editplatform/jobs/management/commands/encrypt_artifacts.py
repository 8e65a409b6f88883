"""`manage.py encrypt_artifacts [--limit N] [--dry-run]`: seal legacy plaintext artifacts.

Deployments from before envelope encryption hold artifacts as plaintext files at
``artifacts/ab/cd/<sha256>``. This command encrypts them in place, one artifact at a
time, while the platform keeps serving them:

1. read the plaintext and check it against its hash (a mismatch is reported, skipped);
2. create the artifact's key row (wrapped data key), committed on its own;
3. write the ciphertext beside the plaintext (``<sha256>.sealed``) and decrypt it back;
4. mark the key sealed: from this commit on, every reader uses the ciphertext;
5. delete the plaintext.

Readers choose by step 4's flag, so before it they read the plaintext, after it the
ciphertext; neither is ever missing (no downtime). Every step is idempotent, so an
interrupted run is resumed by running the command again: it picks up artifacts without
a sealed key and removes plaintext left behind by a run stopped between steps 4 and 5.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from editplatform.core import crypto
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact, ArtifactKey, sealed_name, storage_name


def pending():
    """Live artifacts whose reads still go to plaintext."""
    sealed = ArtifactKey.objects.filter(sealed_at__isnull=False).values("sha256")
    return Artifact.objects.filter(erased_at__isnull=True).exclude(sha256__in=sealed)


def leftover_plaintext():
    """Sealed (or erased) artifacts whose plaintext file is still there."""
    sealed = ArtifactKey.objects.filter(sealed_at__isnull=False).values_list("sha256", flat=True)
    erased = Artifact.objects.filter(erased_at__isnull=False).values_list("sha256", flat=True)
    for digest in [*sealed.iterator(), *erased.iterator()]:
        if default_storage.exists(storage_name(digest)):
            yield digest


def encrypt_one(artifact: Artifact) -> str:
    """Seal one artifact (steps 1-5); returns "sealed", "missing" or "mismatch"."""
    digest = artifact.sha256
    try:
        with default_storage.open(storage_name(digest), "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, OSError):
        return "missing"
    if artifacts.sha256_hex(data) != digest:
        return "mismatch"
    key = artifacts.data_key_row(digest, data)
    artifacts.write_sealed(digest, data, key)
    with default_storage.open(sealed_name(digest), "rb") as handle:
        sealed = handle.read()
    back = crypto.unseal(sealed, artifacts.unwrap(key), bytes.fromhex(key.key_id), digest)
    if back != data:  # pragma: no cover - a storage that returns other bytes than written
        raise CommandError(f"artifact {digest}: the ciphertext does not decrypt to the plaintext")
    ArtifactKey.objects.filter(pk=digest, sealed_at__isnull=True).update(sealed_at=timezone.now())
    default_storage.delete(storage_name(digest))
    return "sealed"


class Command(BaseCommand):
    help = "Encrypt legacy plaintext artifacts in place (resumable; reads keep working)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=0, help="stop after N artifacts")
        parser.add_argument("--dry-run", action="store_true", help="only count")

    def handle(self, *args, limit: int = 0, dry_run: bool = False, **options):
        todo = pending().order_by("created_at")
        if dry_run:
            self.stdout.write(f"{todo.count()} artifact(s) to encrypt")
            return
        counts = {"sealed": 0, "missing": 0, "mismatch": 0, "plaintext_removed": 0}
        for digest in list(leftover_plaintext()):
            default_storage.delete(storage_name(digest))
            counts["plaintext_removed"] += 1
        for artifact in todo.iterator():
            if limit and counts["sealed"] >= limit:
                break
            outcome = encrypt_one(artifact)
            counts[outcome] += 1
            if outcome != "sealed":
                self.stderr.write(f"artifact {artifact.sha256}: {outcome}, left as it is")
        self.stdout.write(
            f"{counts['sealed']} sealed, {counts['plaintext_removed']} leftover plaintext "
            f"removed, {counts['missing']} missing, {counts['mismatch']} not matching their hash; "
            f"{pending().count()} left"
        )
