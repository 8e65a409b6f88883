"""Artifacts (content-addressed bytes) and edit jobs.

An :class:`Artifact` is identified by the SHA-256 of its bytes and stored through
Django's storage API at ``artifacts/ab/cd/<sha256>``: the same bytes are stored once,
writing them twice is harmless (which makes worker retries idempotent), and the audit
log can commit to the hash while the bytes stay deletable. Bytes are only ever served
through a permission-checked view, never from a public URL.

An :class:`EditJob` is one request to invert a photo and apply catalog edits. Its state
changes only through :mod:`editplatform.jobs.states`; who may see it is decided only by
:meth:`EditJobQuerySet.visible_to`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from editplatform.accounts.roles import APPROVER, REVIEWER, has_role
from editplatform.jobs.states import TERMINAL, State


class Artifact(models.Model):
    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original (the upload, metadata removed)"
        RECONSTRUCTION = "reconstruction", "Reconstruction"
        EDITED = "edited", "Edited image"
        LATENT = "latent", "W+ latent"
        RESULT = "result", "Edited photo (full resolution)"
        ALIGNED = "aligned", "Aligned crop (the model's input)"
        TRANSFORM = "transform", "Alignment transform (JSON)"

    sha256 = models.CharField(max_length=64, primary_key=True)
    media_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Crypto-shredding (editplatform.jobs.shredding): the key and the ciphertext are gone,
    # the row stays so jobs and the audit log keep naming what existed.
    erased_at = models.DateTimeField(null=True, blank=True)
    erasure_reason = models.CharField(max_length=200, blank=True)
    erasure_ref = models.CharField(
        max_length=100, blank=True, help_text="what erased it: retention:<kind>, dsr:<id>, ..."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.media_type}, {self.size} B)"

    @property
    def storage_name(self) -> str:
        return storage_name(self.sha256)

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    def erased_under(self) -> str:
        """The line pages and the API show instead of the bytes: erased on <date> under <why>."""
        if self.erased_at is None:
            return ""
        under = self.erasure_reason or self.erasure_ref or "erasure"
        return f"erased on {self.erased_at:%Y-%m-%d} under {under}"


def storage_name(sha256: str) -> str:
    """Where an artifact's plaintext bytes lived before encryption (legacy layout)."""
    return f"artifacts/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def sealed_name(sha256: str) -> str:
    """Where an artifact's ciphertext lives (editplatform.core.crypto's sealed format)."""
    return storage_name(sha256) + ".sealed"


class ArtifactKey(models.Model):
    """The wrapped data key of one artifact (envelope encryption).

    Apart from :class:`Artifact` on purpose: it is created before the artifact row
    (bytes are written first), deleting it is the shredding, and operators back this
    table up on its own, shorter-lived schedule (docs/retention.md), so a destroyed key
    does not come back from a database backup after that window.
    """

    sha256 = models.CharField(max_length=64, primary_key=True)
    key_id = models.CharField(max_length=32, help_text="hex; the sealed blob names it too")
    kek_id = models.CharField(max_length=100, help_text="which key-encryption key wrapped it")
    wrapped = models.BinaryField()
    commitment = models.CharField(
        max_length=64,
        db_index=True,
        help_text="HMAC-SHA256 of the plaintext under a key derived from the data key; "
        "what new audit events record instead of the SHA-256 (editplatform.jobs.keyed_ids)",
    )
    salt = models.BinaryField(
        null=True,
        help_text="per-artifact secret keying the other hashes the log records about it "
        "(upload, parameters); destroyed with the row",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sealed_at = models.DateTimeField(
        null=True, blank=True, help_text="when the ciphertext was written (reads switch to it)"
    )

    def __str__(self) -> str:
        return f"key of {self.sha256[:12]}"


class EditJobQuerySet(models.QuerySet):
    def visible_to(self, user) -> EditJobQuerySet:
        """The one place that decides which jobs a user may see (list, detail, artifacts).

        Requesters and integrations see their own jobs; reviewers see every job
        (their artifact reads are logged); approvers also see jobs held for approval
        and keep seeing the jobs they decided (their decision history). Anonymous users
        see nothing. There is no superuser bypass. Whether a visible job's *held
        outputs* may be read is a second question: :func:`editplatform.jobs.access.may_read`.
        """
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if has_role(user, REVIEWER):
            return self.all()
        condition = Q(requester=user)
        if has_role(user, APPROVER):
            # `decisions` is the approvals app's reverse relation (no import: jobs sit below it).
            decided = EditJob.objects.filter(decisions__approver=user).values("pk")
            condition |= Q(state=State.AWAITING_APPROVAL) | Q(pk__in=decided)
        return self.filter(condition)

    def owned_by(self, user) -> EditJobQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(requester=user)


class EditJob(models.Model):
    class Source(models.TextChoices):
        PORTAL = "portal", "Portal"
        API = "api", "API"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="edit_jobs"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    api_key = models.ForeignKey(
        "accounts.IntegrationKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        help_text="the integration key that submitted the job",
    )
    request_id = models.CharField(max_length=64, blank=True)

    # What was asked.
    original = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="+")
    upload_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the bytes as uploaded")
    upload_format = models.CharField(max_length=10)
    edits = models.JSONField(default=dict, help_text="{edit name: strength}")
    purpose = models.TextField()
    consent = models.BooleanField(
        default=False, help_text="requester attests consent of the person shown"
    )
    params_sha256 = models.CharField(
        max_length=64, help_text="hash of original, edits, purpose: what an approval binds to"
    )
    needs_approval = models.BooleanField(default=False)
    approved_params_sha256 = models.CharField(max_length=64, blank=True)
    # NULL (not "") when absent, so the unique constraint ignores jobs without a key.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    idempotency_fingerprint = models.CharField(max_length=64, blank=True)

    # Where it is.
    state = models.CharField(max_length=20, choices=State.choices, default=State.SUBMITTED)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=40, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)

    # Queueing and execution bookkeeping (outbox, leases, attempts).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveIntegerField(default=0)
    enqueue_error = models.TextField(blank=True)
    lease_id = models.UUIDField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)

    # The model version active at submit (the registry's); the worker runs this version
    # even if another is activated meanwhile, and fails the job if it is no longer served.
    model_pin = models.CharField(max_length=64, blank=True)

    # What came out.
    model_version = models.CharField(max_length=64, blank=True)
    reconstruction = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    edited = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    latent = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The released edited image as it leaves the platform: watermarked and carrying a signed
    # C2PA manifest (set by the provenance app after release; downloads of "edited" serve it).
    marked = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    metrics = models.JSONField(default=dict, blank=True)
    # The photo pipeline (issue 12): the edit pasted back at the photo's size, the crop the
    # model saw, how it was cut, and the domain gate's report on it.
    result = models.ForeignKey(
        Artifact,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the full-resolution edited photo (the main result)",
    )
    # The released full-resolution result as it leaves the platform (marked like `marked`;
    # downloads of "result" serve it once it exists).
    marked_result = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    aligned = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    transform = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    face_index = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="which detected face to edit (left to right), for face models",
    )
    domain_report = models.JSONField(
        default=dict, blank=True, help_text="the domain gate's report on the aligned crop"
    )

    class Quality(models.TextChoices):
        FAST = "fast", "Fast (encoder)"
        REFINE = "refine", "Refine (encoder + bounded optimisation)"

    quality = models.CharField(
        max_length=8,
        choices=Quality.choices,
        default=Quality.FAST,
        help_text="fast: the encoder's latent; refine: then a bounded optimisation against "
        "the aligned crop (steps capped by the operator)",
    )

    # Timings.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    held_at = models.DateTimeField(
        null=True, blank=True, help_text="when the outputs were computed and held for approval"
    )
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per pipeline stage")

    # A rejected (or expired) job resubmitted with changes points back to it.
    resubmitted_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resubmissions"
    )

    objects = EditJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="jobs_unique_idempotency_key_per_requester",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="jobs_progress_at_most_100"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in State]), name="jobs_state_known"
            ),
        ]
        indexes = [
            models.Index(fields=["requester", "-created_at"], name="jobs_requester_created"),
            models.Index(fields=["state", "-created_at"], name="jobs_state_created"),
            models.Index(fields=["api_key", "-created_at"], name="jobs_apikey_created"),
        ]

    def __str__(self) -> str:
        return f"EditJob {self.id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    def artifact(self, kind: str) -> Artifact | None:
        """The artifact of ``kind`` (one of Artifact.Kind) or None when not produced."""
        if kind not in Artifact.Kind.values:
            return None
        return getattr(self, kind)

    def queue_to_start_seconds(self) -> float | None:
        """From entering the queue (in the submit transaction) to a worker claiming it."""
        if self.queued_at and self.started_at:
            return max(0.0, (self.started_at - self.queued_at).total_seconds())
        return None
