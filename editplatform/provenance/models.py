"""What lets an output found outside be traced back: its watermark key and fingerprints.

`WatermarkKey`: the random 32-bit key embedded in one released output -> the job. A
decoded watermark is only a claim until this table resolves it.

`Fingerprint`: one perceptual hash (PDQ or the rotation-tolerant one) of one released
output, plus its 16 chunks of 16 bits as integer columns: multi-index hashing
(Norouzi et al.) on plain B-trees, so PostgreSQL needs no extension (index.py). Each
chunk has one covering index per kind (`fp_<kind>_c<i>`: key the chunk, INCLUDE the id
and the four 64-bit words), so a probe reads its candidates and measures their distance
from the index alone (index-only scan) instead of fetching ~4,000 random heap rows.
"""

from __future__ import annotations

from django.db import models

from editplatform.provenance.check_keys import CheckKey  # noqa: F401  (a model of this app)
from editplatform.provenance.fingerprint import CHUNKS, WORDS

FINGERPRINT_KINDS = ("pdq", "rot")


def _covering_indexes() -> list[models.Index]:
    """Per kind and chunk: B-tree on the chunk, covering id + h0..h3, partial on the kind."""
    return [
        models.Index(
            fields=[f"c{i}"],
            include=["id", "h0", "h1", "h2", "h3"],
            condition=models.Q(kind=kind),
            name=f"fp_{kind}_c{i}",
        )
        for kind in FINGERPRINT_KINDS
        for i in range(CHUNKS)
    ]


class WatermarkKey(models.Model):
    key = models.BigIntegerField(unique=True, help_text="the 32-bit key carried by the watermark")
    job = models.ForeignKey("jobs.EditJob", on_delete=models.PROTECT, related_name="+")
    marked_sha256 = models.CharField(
        max_length=64, db_index=True, help_text="SHA-256 of the released (marked, signed) bytes"
    )
    manifest = models.JSONField(default=dict, help_text="the audit assertion the manifest carries")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("check_provenance", "Can check whether an image was made here")]

    def __str__(self) -> str:
        return f"watermark {self.key:08x} -> job {self.job_id}"


class Fingerprint(models.Model):
    class Kind(models.TextChoices):
        PDQ = "pdq", "PDQ"
        ROT = "rot", "rotation-tolerant pHash"

    job = models.ForeignKey(
        "jobs.EditJob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    marked_sha256 = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=3, choices=Kind.choices)
    value = models.BinaryField(help_text="256 bits")
    # c0..c15: the hash's 16-bit chunks, minus 32768 so they fit a smallint.
    locals().update({f"c{i}": models.SmallIntegerField() for i in range(CHUNKS)})
    # h0..h3: the same 256 bits as four signed 64-bit words, so PostgreSQL measures the
    # distance itself (bit_count of the XOR) and returns only the matches.
    locals().update({f"h{i}": models.BigIntegerField(default=0) for i in range(WORDS)})
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = _covering_indexes()

    def __str__(self) -> str:
        return f"{self.kind} {bytes(self.value).hex()[:16]}… (job {self.job_id})"
