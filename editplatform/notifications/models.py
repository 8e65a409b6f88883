"""One notice to one person about one of their jobs (a decision or a result)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    class Kind(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        SUCCEEDED = "succeeded", "Result ready"
        FAILED = "failed", "Failed"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    job = models.ForeignKey("jobs.EditJob", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The audit event this notice reports: delivery of the signal is once per commit, and
    # the unique key keeps a retried hook from telling anyone twice.
    event_seq = models.BigIntegerField()
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notif_recipient_read")]
        constraints = [models.UniqueConstraint(fields=["recipient", "event_seq"], name="notif_once_per_event")]

    def __str__(self) -> str:
        return f"{self.recipient} · {self.kind} · {self.job_id}"
