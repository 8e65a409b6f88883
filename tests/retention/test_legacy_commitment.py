"""Artifacts stored before encryption get their keyed commitment from the migration.

A deployment's legacy artifacts have no key row, so events name them by their plain
SHA-256 (the event filter has no commitment to use). ``encrypt_artifacts`` creates the
key row with a commitment and salt, exactly as a new store does: from then on new
events name the artifact by its commitment, a verifier recomputes it from the bytes,
and shredding makes it unconfirmable. The events written before the migration keep the
plain hash (the log never changes); they still verify. On PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from audit.log import append_event
from editplatform.jobs import artifacts, keyed_ids, shredding
from editplatform.jobs.models import Artifact, ArtifactKey, storage_name
from tests.audit.helpers import png
from tests.retention.test_retention import (  # noqa: F401 - fixtures
    assert_log_verifies,
    fast_hasher_and_storage,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_migration_gives_legacy_artifacts_a_commitment(fast_hasher_and_storage, tmp_path):  # noqa: F811
    data = png((77, 40, 90))
    digest = artifacts.sha256_hex(data)
    path = fast_hasher_and_storage / storage_name(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    legacy = Artifact.objects.create(sha256=digest, media_type="image/png", size=len(data))

    before = append_event(
        "job.submitted", subject="job:legacy", payload={"original_sha256": digest}
    )
    assert before.payload == {"original_sha256": digest}  # no key row: nothing to key with

    call_command("encrypt_artifacts")
    key = ArtifactKey.objects.get(pk=digest)
    assert key.sealed_at is not None and key.salt and len(key.commitment) == 64
    assert key.commitment != digest and not path.exists()

    after = append_event("job.submitted", subject="job:legacy", payload={"original_sha256": digest})
    assert after.payload["original_sha256"] == key.commitment
    assert after.payload["artifact_ids"] == "keyed-v1"
    assert keyed_ids.confirm(key.commitment, legacy)  # recomputed from bytes + data key
    assert keyed_ids.confirm(before.payload["original_sha256"], legacy)  # the old, plain form

    shredding.shred(legacy, reason="test", ref="test:legacy", actor_name="test")
    legacy.refresh_from_db()
    assert not keyed_ids.confirm(key.commitment, legacy)
    assert_log_verifies(tmp_path)
