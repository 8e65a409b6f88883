"""An approver's decision on a job, bound to the exact parameters and outputs they saw.

A decision records the SHA-256 of the job's canonical parameters (original hash,
edits, purpose) and of its held outputs (reconstruction, edited image, latent) at the
moment of the decision. If any of those change, the hashes no longer match and the
approval counts for nothing. Approvals also expire. Rows are
never updated: a new decision is a new row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Decision(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    job = models.ForeignKey("jobs.EditJob", on_delete=models.PROTECT, related_name="decisions")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    params_sha256 = models.CharField(max_length=64)
    outputs_sha256 = models.CharField(
        max_length=64, blank=True, help_text="hash of the held outputs the approver saw"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["job", "verdict"], name="approvals_job_verdict")]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "approver", "params_sha256"],
                name="approvals_one_decision_per_approver",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of {self.job_id} by {self.approver_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise RuntimeError("approval decisions are immutable; record a new decision instead")
        super().save(*args, **kwargs)
