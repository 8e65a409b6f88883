"""REST endpoints for approvers: approve or reject a job (session auth; keys have no scope).

Refusals (a serializer's, or the services' DomainError and PermissionDenied) are
rendered by the project's one exception handler (editplatform.core.api).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from editplatform.approvals import services
from editplatform.core.api import ApiErrorSerializer
from editplatform.jobs.models import EditJob

ERRORS = {
    403: OpenApiResponse(
        ApiErrorSerializer, description="not an approver, or the requester's own job"
    ),
    404: OpenApiResponse(ApiErrorSerializer, description="no such job (or not visible to you)"),
    409: OpenApiResponse(
        ApiErrorSerializer,
        description="not held for approval, parameters or outputs changed, or already decided",
    ),
}


class ApproveSerializer(serializers.Serializer):
    params_sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="the job's params_sha256 you reviewed"
    )
    outputs_sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="the hash of the held outputs you reviewed (outputs_sha256)"
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DecisionResult(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()


class _DecisionView(APIView):
    serializer_class: type[serializers.Serializer]

    def _job(self, request, job_id) -> EditJob:
        try:
            return EditJob.objects.visible_to(request.user).get(pk=job_id)
        except EditJob.DoesNotExist:
            raise NotFound("no such job") from None

    def post(self, request, job_id):
        payload = self.serializer_class(data=request.data)
        payload.is_valid(raise_exception=True)
        job = self.decide(self._job(request, job_id), request.user, payload.validated_data)
        return Response({"id": str(job.pk), "state": job.state}, status=status.HTTP_200_OK)


class ApproveView(_DecisionView):
    serializer_class = ApproveSerializer

    @extend_schema(
        request=ApproveSerializer,
        responses={200: DecisionResult, 400: ApiErrorSerializer, **ERRORS},
    )
    def post(self, request, job_id):
        return super().post(request, job_id)

    def decide(self, job, user, data):
        return services.approve(
            job,
            user,
            params_sha256=data["params_sha256"],
            outputs_sha256=data["outputs_sha256"],
            comment=data.get("comment", ""),
        )


class RejectView(_DecisionView):
    serializer_class = RejectSerializer

    @extend_schema(
        request=RejectSerializer, responses={200: DecisionResult, 400: ApiErrorSerializer, **ERRORS}
    )
    def post(self, request, job_id):
        return super().post(request, job_id)

    def decide(self, job, user, data):
        return services.reject(job, user, reason=data["reason"])
