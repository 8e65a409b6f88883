"""The append-only audit log's tables.

- `AuditEvent`: one row per event, `seq` = the leaf index in the Merkle tree (0, 1, 2,
  ... with no gaps). `entry` holds the canonical JSON that the tree commits to; the
  other columns are copies of its fields for filtering, and `audit verify` checks
  that they agree with it.
- `TreeNode`: every complete subtree hash above the leaves, so inclusion and
  consistency proofs need O(log n) reads.
- `Checkpoint`: signed checkpoints (also exported outside the database).
- `LogHead`: one row; the tree's size, right edge and root. Appends lock it, which
  serialises them.

The tables are created by this app's migrations with hand-written SQL (see
`audit/migrations/0001_initial.py`) and are *unmanaged* for Django: PostgreSQL/SQLite triggers
refuse UPDATE, DELETE and TRUNCATE, and keeping them out of Django's table list
means `manage.py flush` (and the test runner's flush between transactional tests)
leaves the audit log alone instead of failing on it. The Python-side guards below
refuse saves of existing rows and deletes, to fail early and clearly.
"""

from __future__ import annotations

import json
from functools import cached_property

from django.conf import settings
from django.db import models

from audit import actions


class AppendOnlyError(Exception):
    """An attempt to change or remove audit data."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no update")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no delete")

    _raw_delete = delete


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only: no update")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only: no delete")


class AuditEvent(AppendOnlyModel):
    seq = models.BigIntegerField(primary_key=True, help_text="Leaf index in the Merkle tree.")
    created_at = models.DateTimeField()
    # No database-level constraint: the log must outlive user rows (and the test
    # runner's flushes). Django nulls the column when a user is deleted; the username
    # copied in `actor_name` (and in the hashed entry) survives.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    subject = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    entry = models.TextField(help_text="Canonical JSON committed to by the leaf hash.")
    leaf_hash = models.BinaryField()

    class Meta:
        managed = False
        db_table = "audit_event"
        ordering = ["-seq"]
        verbose_name = "audit event"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject}".strip()

    @cached_property
    def data(self) -> dict:
        return json.loads(self.entry)

    @property
    def payload(self) -> dict:
        return self.data.get("payload", {})

    @property
    def leaf_hex(self) -> str:
        return bytes(self.leaf_hash).hex()

    @property
    def subjects(self) -> list[str]:
        """Every subject the event names: the main one, then the entry's extra subjects."""
        extra = self.data.get("subjects") or []
        return [s for s in [self.subject, *extra] if s]

    @cached_property
    def summary(self) -> str:
        """A readable one-line summary, rendered from the entry by the action's registration."""
        return actions.summarize(self.data)


class AuditEventSubject(AppendOnlyModel):
    """An extra subject of an event (the entry's `subjects` list), indexed for lookups.

    Written by `append_event` in the same transaction as its event; the entry (and so
    the leaf hash) holds the same list, which is the authority.
    """

    pk = models.CompositePrimaryKey("subject", "seq")
    subject = models.CharField(max_length=200)
    seq = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "audit_event_subject"

    def __str__(self) -> str:
        return f"#{self.seq} {self.subject}"


class TreeNode(AppendOnlyModel):
    """A complete subtree hash: key = level << 56 | index (level >= 1)."""

    key = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField()

    LEVEL_SHIFT = 56

    class Meta:
        managed = False
        db_table = "audit_treenode"

    def __str__(self) -> str:
        return (
            f"node level {self.key >> self.LEVEL_SHIFT} "
            f"index {self.key & ((1 << self.LEVEL_SHIFT) - 1)}"
        )

    @classmethod
    def key_for(cls, level: int, index: int) -> int:
        return level << cls.LEVEL_SHIFT | index


class Checkpoint(AppendOnlyModel):
    size = models.BigIntegerField(primary_key=True)
    root_hash = models.BinaryField()
    note = models.TextField(help_text="The signed note (C2SP tlog-checkpoint).")
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "audit_checkpoint"
        ordering = ["-size"]
        get_latest_by = "size"

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class LogHead(models.Model):
    """The single row (id = 1) that appends lock; its size only grows (trigger)."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    frontier = models.BinaryField(default=b"")
    root_hash = models.BinaryField()
    last_time = models.DateTimeField(null=True)
    checkpoint_size = models.BigIntegerField(default=0)
    checkpoint_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "audit_loghead"

    def __str__(self) -> str:
        return f"log head (size {self.size})"

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the log head cannot be deleted")
