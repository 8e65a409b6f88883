"""API representations of jobs and the edit catalog."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from editplatform.jobs import access, services
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import State


class ArtifactSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    media_type = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="permission-checked download URL (each read is audited)")
    erased_at = serializers.DateTimeField(
        allow_null=True,
        help_text="when the artifact was crypto-shredded (retention or erasure); its URL then "
        "answers 410",
    )
    erased_under = serializers.CharField(
        help_text='"erased on <date> under <reason>", empty while the bytes exist'
    )


class DomainReportSerializer(serializers.Serializer):
    """The domain gate's report on the job's aligned photo (an empty object until computed,
    so every field is optional)."""

    gated = serializers.BooleanField(
        required=False, help_text="false: the model declares no domain gate (not judged)"
    )
    in_domain = serializers.BooleanField(
        required=False, help_text="false: the model cannot represent this photo well"
    )
    explanation = serializers.CharField(
        required=False, help_text="plain-language verdict with the numbers, for the requester"
    )
    reasons = serializers.ListField(
        required=False,
        child=serializers.CharField(),
        help_text="failed checks: ood (unusual latent), psnr, ssim",
    )
    ood_score = serializers.FloatField(
        required=False, allow_null=True, help_text="Mahalanobis distance of the W+ code"
    )
    ood_max = serializers.FloatField(
        required=False, allow_null=True, help_text="calibrated limit of ood_score"
    )
    psnr = serializers.FloatField(
        required=False, allow_null=True, help_text="reconstruction PSNR (dB) on the aligned crop"
    )
    psnr_min = serializers.FloatField(required=False, allow_null=True)
    ssim = serializers.FloatField(
        required=False, allow_null=True, help_text="reconstruction SSIM on the aligned crop"
    )
    ssim_min = serializers.FloatField(required=False, allow_null=True)
    domain = serializers.CharField(required=False, help_text="what the model was trained on")
    alignment = serializers.CharField(required=False, help_text="ffhq, object or center")


class JobSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    domain_report = serializers.SerializerMethodField(
        help_text="the domain gate's report on the aligned photo ({} until the worker computed it)"
    )
    out_of_domain = serializers.SerializerMethodField(
        help_text="true when the domain gate found the photo outside what the model represents "
        "(the job is then flagged, held for an approver or refused, per the platform's policy)"
    )
    edits = serializers.DictField(
        child=serializers.FloatField(),
        read_only=True,
        help_text="{edit name: strength} as accepted (zero strengths dropped)",
    )
    artifacts = serializers.SerializerMethodField()
    queue_to_start_seconds = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=State.choices, read_only=True)
    model_pin = serializers.CharField(
        read_only=True,
        help_text="the model version (SHA-256 of its bundle manifest) this job was pinned to "
        "at submit: the version active then, which computes it even if another version is "
        "activated meanwhile; empty for jobs submitted before models were registered. If the "
        "registry no longer serves it (unknown or retired), the job fails with error_code "
        "model_unknown. model_version is the version that actually produced the outputs",
    )

    class Meta:
        model = EditJob
        fields = [
            "id",
            "state",
            "progress",
            "stage",
            "requester",
            "source",
            "edits",
            "purpose",
            "consent",
            "needs_approval",
            "params_sha256",
            "upload_sha256",
            "model_pin",
            "model_version",
            "metrics",
            "error",
            "error_code",
            "cancel_requested",
            "attempts",
            "artifacts",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "timings",
            "queue_to_start_seconds",
            "face_index",
            "quality",
            "domain_report",
            "out_of_domain",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=ArtifactSerializer()))
    def get_artifacts(self, job: EditJob) -> dict:
        out = {}
        request = self.context.get("request")
        for kind in Artifact.Kind.values:
            # Held outputs are not listed to who may not read them (compute, then release).
            artifact = access.readable_artifact(getattr(request, "user", None), job, kind)
            if artifact is None:
                continue
            out[kind] = {
                "sha256": artifact.sha256,
                "media_type": artifact.media_type,
                "size": artifact.size,
                "width": artifact.width,
                "height": artifact.height,
                "url": reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": kind}),
                "erased_at": artifact.erased_at,
                "erased_under": artifact.erased_under(),
            }
        return out

    @extend_schema_field(DomainReportSerializer)
    def get_domain_report(self, job: EditJob) -> dict:
        return job.domain_report or {}

    def get_out_of_domain(self, job: EditJob) -> bool:
        return (job.domain_report or {}).get("in_domain") is False

    def get_queue_to_start_seconds(self, job: EditJob) -> float | None:
        return job.queue_to_start_seconds()


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part of a multipart request (documented as binary, not as the URL FileField
    renders)."""


def _limit_text() -> str:
    return f"at most {settings.UPLOAD_MAX_BYTES} bytes and {settings.UPLOAD_MAX_PIXELS} pixels"


PURPOSE_HELP = (
    f"why this edit is needed ({services.PURPOSE_MIN} to {services.PURPOSE_MAX} characters; "
    "recorded "
    "in the audit log)"
)
CONSENT_HELP = "attests the consent of the person shown (or the rights holder); must be true"
FACE_INDEX_HELP = (
    "face models: which detected face to edit (0 = leftmost); without it a photo with "
    "several faces fails with error_code multiple_faces"
)
QUALITY_HELP = (
    "fast (default): the encoder's result; refine: the encoder's result improved by a "
    "bounded optimisation against the photo (closer likeness, slower); part of "
    "params_sha256"
)
EDITS_HELP = "edit name to strength; names and allowed ranges: GET /api/v1/edits"


class JobCreateSerializer(serializers.Serializer):
    """A new job as a multipart form: the image as a file part, the edits as JSON text."""

    image = UploadField(help_text=f"JPEG, PNG or WebP (decided by content), {_limit_text()}")
    edits = serializers.CharField(help_text=f"a JSON object as text ({EDITS_HELP})")
    purpose = serializers.CharField(
        min_length=services.PURPOSE_MIN, max_length=services.PURPOSE_MAX, help_text=PURPOSE_HELP
    )
    consent = serializers.BooleanField(help_text=CONSENT_HELP)
    face_index = serializers.IntegerField(
        required=False, min_value=0, max_value=99, help_text=FACE_INDEX_HELP
    )
    quality = serializers.ChoiceField(
        choices=services.QUALITY_MODES, required=False, default="fast", help_text=QUALITY_HELP
    )


class JobCreateJsonSerializer(serializers.Serializer):
    """A new job as one JSON object: the image as base64 text, the edits as an object."""

    image_base64 = serializers.CharField(
        help_text=f"the image file (JPEG, PNG or WebP, {_limit_text()}) in standard base64; "
        "a `data:image/...;base64,` prefix is accepted"
    )
    edits = serializers.DictField(child=serializers.FloatField(), help_text=EDITS_HELP)
    purpose = serializers.CharField(
        min_length=services.PURPOSE_MIN, max_length=services.PURPOSE_MAX, help_text=PURPOSE_HELP
    )
    consent = serializers.BooleanField(help_text=CONSENT_HELP)
    face_index = serializers.IntegerField(
        required=False, min_value=0, max_value=99, help_text=FACE_INDEX_HELP
    )
    quality = serializers.ChoiceField(
        choices=services.QUALITY_MODES, required=False, default="fast", help_text=QUALITY_HELP
    )


class EditSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    min_strength = serializers.FloatField()
    max_strength = serializers.FloatField()
    default_strength = serializers.FloatField()
    sensitive = serializers.BooleanField(help_text="true: a job using it waits for an approval")


class CatalogSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    edits = EditSpecSerializer(many=True)
