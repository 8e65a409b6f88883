"""Retention policies, legal holds and data-subject erasure requests.

Rows here are the *decisions*; the audit log is their record (each change is an event).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RetentionPolicy(models.Model):
    """How long artifacts of one kind are kept after their job ended (edited in the admin).

    A row overrides the ``RETENTION_DAYS`` setting for its kind; with ``purpose_contains``
    it applies only to jobs whose purpose contains that text (case-insensitive), and such
    a specific row wins over a general one.
    """

    KINDS = [
        ("original", "Original"),
        ("reconstruction", "Reconstruction"),
        ("edited", "Edited image"),
        ("latent", "W+ latent"),
        ("result", "Edited photo (full resolution)"),
        ("aligned", "Aligned crop"),
        ("transform", "Alignment transform"),
        ("marked", "Released (marked) copy"),
    ]

    kind = models.CharField(max_length=20, choices=KINDS)
    purpose_contains = models.CharField(max_length=200, blank=True)
    days = models.PositiveIntegerField(help_text="days after the job ended")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "purpose_contains"], name="retention_one_policy_per_kind_purpose"
            )
        ]

    def __str__(self) -> str:
        scope = f" (purpose ~ {self.purpose_contains!r})" if self.purpose_contains else ""
        return f"{self.kind}: {self.days} days{scope}"


class LegalHoldQuerySet(models.QuerySet):
    def active(self):
        return self.filter(lifted_at__isnull=True)


class LegalHold(models.Model):
    """A reviewer's hold on a job: none of its artifacts may be shredded while active.

    Lifting takes two people: one asks (with a reason), another confirms.
    """

    job = models.ForeignKey("jobs.EditJob", on_delete=models.PROTECT, related_name="legal_holds")
    reason = models.TextField()
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField(auto_now_add=True)
    lift_reason = models.TextField(blank=True)
    lift_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_requested_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(lifted_by__isnull=True) | ~Q(lifted_by=models.F("lift_requested_by")),
                name="retention_hold_lift_four_eyes",
            )
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} on {self.job_id}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class ErasureRequest(models.Model):
    """A data subject's request to erase the artifacts of some jobs (art. 17 GDPR).

    Recorded by one reviewer, approved by another; approval shreds every artifact of
    the jobs and issues a signed certificate with the log's inclusion proofs.
    """

    class State(models.TextChoices):
        RECORDED = "recorded", "Recorded, awaiting a second reviewer"
        ERASED = "erased", "Erased"

    subject = models.CharField(max_length=200, help_text="who asked (as the request names them)")
    note = models.TextField(blank=True, help_text="how the request came in, what it covers")
    jobs = models.ManyToManyField("jobs.EditJob", related_name="erasure_requests")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECORDED)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    certificate = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("recorded_by")),
                name="retention_erasure_four_eyes",
            )
        ]

    def __str__(self) -> str:
        return f"erasure request {self.pk} ({self.state})"

    @property
    def ref(self) -> str:
        return f"dsr:{self.pk}"
