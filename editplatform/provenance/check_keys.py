"""What a ``provenance.checked`` event records about the submitted image: a keyed hash.

Why: the "was this made here?" check is asked with an image, often a photo of a person
(a data subject's own photo in an erasure request). An event that records the image's
plain SHA-256 lets anyone who reads the log, and holds a copy of that photo, confirm
that exactly those bytes were checked here — after the person's data was erased. From
scheme ``keyed-check-v1`` on, the event records HMAC-SHA256 of the image's SHA-256
under a **per-check salt** (32 random bytes) kept in its own row (:class:`CheckKey`),
never in the log:

* while the row lives, a reviewer holding the image can confirm a check (:func:`confirm`);
* deleting the row is the shredding: nobody can then recompute the value from a copy.
  Rows go when an erasure request erases a job the check found (:func:`shred_for_jobs`,
  called by the erasure), and when they are older than
  ``PROVENANCE_CHECK_KEY_DAYS`` (:func:`shred_expired`, called by the retention run).

Why not an HMAC under one platform key: that key would have to live as long as the log
and would confirm any copy for whoever holds it (operators, a leaked key) for ever; a
per-check salt can be destroyed per check, like the artifacts' own keys
(:mod:`editplatform.jobs.keyed_ids`). Different salts also mean two checks of the same
image record unrelated values: the log does not even say that one image was checked
twice.

Older events keep the plain hash (the log never changes) and still verify;
:func:`confirm` accepts both forms. The table is backed up like ``jobs_artifactkey``
(short-lived key backups, docs/retention.md), so a shredded salt does not come back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

SCHEME = "keyed-check-v1"
MARKER = "image_ids"
SALT_BYTES = 32
_DOMAIN = b"styleledger provenance.checked v1|"


class CheckKey(models.Model):
    """The salt of one recorded check; deleting the row shreds the recorded hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    salt = models.BinaryField()
    jobs = models.JSONField(
        default=list, help_text="job ids the check found (an erasure of one shreds this row)"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        app_label = "provenance"

    def __str__(self) -> str:
        return f"check key {self.pk}"


def keyed_hash(salt: bytes, sha256_hex: str) -> str:
    return hmac.new(bytes(salt), _DOMAIN + sha256_hex.encode(), hashlib.sha256).hexdigest()


def new_key(job_ids: list[str]) -> CheckKey:
    """A fresh salt row for one check (call inside the transaction that logs the check)."""
    return CheckKey.objects.create(salt=secrets.token_bytes(SALT_BYTES), jobs=sorted(job_ids))


def recorded_fields(key: CheckKey, sha256_hex: str) -> dict:
    """The payload fields that name the checked image (its keyed hash, the key row)."""
    return {"sha256": keyed_hash(key.salt, sha256_hex), "check_key": str(key.pk), MARKER: SCHEME}


def confirm(payload: dict, data: bytes) -> bool:
    """Was ``data`` the image of the check that logged ``payload``?

    A plain SHA-256 (events before ``keyed-check-v1``) is compared as it is; a keyed one
    is recomputed under its check's salt — False once that row is shredded.
    """
    digest = hashlib.sha256(data).hexdigest()
    recorded = payload.get("sha256")
    if payload.get(MARKER) != SCHEME:
        return isinstance(recorded, str) and hmac.compare_digest(recorded, digest)
    key = CheckKey.objects.filter(pk=_uuid(payload.get("check_key"))).first()
    if key is None or not isinstance(recorded, str):
        return False
    return hmac.compare_digest(keyed_hash(key.salt, digest), recorded)


def shred_for_jobs(job_ids) -> int:
    """Delete the salts of checks that found any of ``job_ids`` (an erasure of them)."""
    wanted = {str(pk) for pk in job_ids}
    if not wanted:
        return 0
    doomed = [
        key.pk
        for key in CheckKey.objects.exclude(jobs=[]).only("id", "jobs").iterator()
        if wanted.intersection(key.jobs or [])
    ]
    return CheckKey.objects.filter(pk__in=doomed).delete()[0]


def shred_expired(now=None) -> int:
    """Delete the salts older than ``PROVENANCE_CHECK_KEY_DAYS`` (the retention run)."""
    days = settings.PROVENANCE_CHECK_KEY_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return CheckKey.objects.filter(created_at__lte=cutoff).delete()[0]


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
