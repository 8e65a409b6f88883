"""A registered model version: the bundle hash, its verified copy, its card, its state.

The version is the SHA-256 of the bundle's ``manifest.json`` (the same string every job
records as ``model_version``); the manifest commits to every weight file, so the row
names the exact bytes. States move registered -> approved -> active -> retired; an
active version that another replaces goes back to registered (its approval was used
up), so a rollback needs a fresh four-eyes approval like any activation. A database
constraint keeps at most one active version per purpose (the worker queue it serves).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

DEFAULT_PURPOSE = "gpu"  # the edit-job queue


class ModelVersion(models.Model):
    class State(models.TextChoices):
        REGISTERED = "registered", "Registered"
        APPROVED = "approved", "Approved"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    version = models.CharField(max_length=64, unique=True, help_text="SHA-256 of manifest.json")
    name = models.CharField(max_length=100, help_text="a label for people")
    purpose = models.CharField(max_length=40, default=DEFAULT_PURPOSE)
    state = models.CharField(max_length=12, choices=State.choices, default=State.REGISTERED)
    path = models.CharField(max_length=500, help_text="the registry's verified copy of the bundle")
    card = models.JSONField(default=dict, help_text="the model card, built from the manifest")
    parent_version = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=20, help_text="path, upload, bootstrap or catalog")

    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    # The pending approval for the next activation (cleared when it is used or withdrawn).
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_sha256 = models.CharField(
        max_length=64, blank=True, help_text="the bundle hash the approver saw"
    )
    approval_comment = models.TextField(blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-registered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(state="active"),
                name="models_registry_one_active_per_purpose",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["registered", "approved", "active", "retired"]),
                name="models_registry_state_known",
            ),
        ]
        permissions = [
            ("approve_modelversion", "Can approve a model version for activation (model approver)")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.version[:12]}, {self.state})"

    @property
    def short(self) -> str:
        return self.version[:12]

    @property
    def subject(self) -> str:
        return f"model:{self.version}"


class PocRun(models.Model):
    """One proof-of-concept report (``inversion.poc``) over an admin's uploaded photos.

    The photos are stored as one artifact (a zip of validated, normalised PNGs, sealed
    like every artifact); the worker writes ``report.json`` and ``report.html`` as two
    more. ``stage`` and ``progress`` are what the run's page shows while it works.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    gpu_hour_price = models.DecimalField(max_digits=10, decimal_places=4)
    photo_count = models.PositiveIntegerField()
    photos = models.ForeignKey(
        "jobs.Artifact", on_delete=models.PROTECT, related_name="+", help_text="zip of the photos"
    )
    report_json = models.ForeignKey(
        "jobs.Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    report_html = models.ForeignKey(
        "jobs.Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    summary = models.JSONField(default=dict, blank=True, help_text="headline figures")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "succeeded", "failed"]),
                name="models_registry_poc_state_known",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="models_registry_poc_progress_le_100"
            ),
        ]

    def __str__(self) -> str:
        return f"PoC {self.pk} ({self.state})"

    @property
    def subject(self) -> str:
        return f"poc:{self.pk}"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)
