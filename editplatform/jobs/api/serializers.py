"""API representations of jobs and the edit catalog."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from editplatform.jobs import access
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.states import State


class ArtifactSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    media_type = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="permission-checked download URL (each read is audited)")


class JobSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    artifacts = serializers.SerializerMethodField()
    queue_to_start_seconds = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=State.choices, read_only=True)

    class Meta:
        model = EditJob
        fields = [
            "id", "state", "progress", "stage", "requester", "source", "edits", "purpose", "consent",
            "needs_approval", "params_sha256", "upload_sha256", "model_version", "metrics", "error", "error_code",
            "cancel_requested", "attempts", "artifacts", "created_at", "queued_at", "started_at", "finished_at",
            "timings", "queue_to_start_seconds",
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
                "sha256": artifact.sha256, "media_type": artifact.media_type, "size": artifact.size,
                "width": artifact.width, "height": artifact.height,
                "url": reverse("jobs-api:artifact", kwargs={"job_id": job.pk, "kind": kind}),
            }
        return out

    def get_queue_to_start_seconds(self, job: EditJob) -> float | None:
        return job.queue_to_start_seconds()


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part of a multipart request (documented as binary, not as the URL FileField renders)."""


class JobCreateSerializer(serializers.Serializer):
    """Multipart form of POST /api/v1/jobs (validated by the services, documented here)."""

    image = UploadField(help_text="JPEG, PNG or WebP (decided by content); at most UPLOAD_MAX_BYTES")
    edits = serializers.CharField(help_text='JSON object {edit name: strength}, e.g. {"smile": 1.5}; see GET /api/v1/edits')
    purpose = serializers.CharField(help_text="why this edit is needed (recorded in the audit log)")
    consent = serializers.BooleanField(help_text="attests consent of the person shown; must be true")


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
