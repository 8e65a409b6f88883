"""Destroyed keys do not come back from the database backup (docs/retention.md, "Backups").

The design: wrapped data keys live in their own table (``jobs_artifactkey``). The main
database backup leaves that table's rows out (``pg_dump --exclude-table-data``); the
keys are backed up on their own, kept only for the short key-backup window. So:

* a main backup taken *before* an erasure, restored *after* it, holds the artifact
  rows but no key: with a copy of the ciphertext (a storage backup) and the KEK,
  nothing decrypts;
* a key backup from before the erasure would still unwrap the key (shown here): that
  is why key backups expire after the window, which is the erasure's real deadline.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import psycopg
import pytest
from django.db import connection

from editplatform.core import crypto
from editplatform.jobs import artifacts, shredding
from editplatform.jobs.models import sealed_name
from tests.audit.helpers import png
from tests.conftest import require_env
from tests.services import _pg_bin, create_database

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _pg(tool: str, *args: str) -> None:
    done = subprocess.run(
        [str(_pg_bin() / tool), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{tool} failed: {done.stderr}"


def test_a_restored_backup_cannot_decrypt_an_erased_artifact(tmp_path, settings, test_pass):
    if test_pass != "postgres":
        pytest.fail("the backup test runs on PostgreSQL (python -m tests.launch)")
    storage = tmp_path / "storage"
    storage.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(storage)},
        },
    }
    data = png((123, 45, 67))
    artifact = artifacts.store(data, "image/png", width=16, height=16)
    sha = artifact.sha256
    server = require_env("DATABASE_URL").rsplit("/", 1)[0]
    live_url = f"{server}/{connection.settings_dict['NAME']}"

    # Backups before the erasure: the main dump (key rows left out), the key dump, and
    # a copy of the storage (the ciphertext).
    main_dump, key_dump = tmp_path / "main.dump", tmp_path / "keys.dump"
    _pg("pg_dump", "-Fc", "--exclude-table-data=jobs_artifactkey", "-f", str(main_dump), live_url)
    _pg("pg_dump", "-Fc", "--data-only", "-t", "jobs_artifactkey", "-f", str(key_dump), live_url)
    shutil.copytree(storage, tmp_path / "storage-backup")
    ciphertext = (tmp_path / "storage-backup" / sealed_name(sha)).read_bytes()
    assert data not in ciphertext

    assert shredding.shred(sha, reason="data-subject request", ref="dsr:test")
    assert not (storage / sealed_name(sha)).exists()

    # Restore the main backup into a fresh database: the artifact row is back, its key not.
    restored = create_database(f"{server}/postgres", f"restored_{uuid.uuid4().hex[:8]}")
    _pg("pg_restore", "--no-owner", "-d", restored, str(main_dump))
    with psycopg.connect(restored) as conn:
        row = conn.execute("SELECT erased_at FROM jobs_artifact WHERE sha256 = %s", [sha])
        assert row.fetchone() == (None,)  # the backup predates the erasure
        keys = conn.execute("SELECT count(*) FROM jobs_artifactkey").fetchone()[0]
        assert keys == 0  # ... but holds no wrapped key at all
    # Nothing else decrypts the ciphertext copy: a fresh key (or none) fails authentication.
    other_key, _ = crypto.new_data_key()
    header_key_id = crypto.header_key_id(ciphertext)
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.unseal(ciphertext, other_key, header_key_id, sha)

    # The key backup from before the erasure is the window: it still unwraps the key.
    # Key backups are therefore kept only for the key-backup window (docs/retention.md).
    _pg("pg_restore", "--data-only", "--no-owner", "-d", restored, str(key_dump))
    with psycopg.connect(restored) as conn:
        wrapped, key_id = conn.execute(
            "SELECT wrapped, key_id FROM jobs_artifactkey WHERE sha256 = %s", [sha]
        ).fetchone()
    data_key = crypto.key_wrapper().unwrap(bytes(wrapped), b"artifact:" + sha.encode())
    assert crypto.unseal(ciphertext, data_key, bytes.fromhex(key_id), sha) == data
