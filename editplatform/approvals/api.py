"""REST endpoints for approvers: approve or reject a job (session auth; keys have no scope)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from editplatform.approvals import services
from editplatform.jobs.models import EditJob


class ApproveSerializer(serializers.Serializer):
    params_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="the job's params_sha256 you reviewed")
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
        job = self._job(request, job_id)
        try:
            job = self.decide(job, request.user, payload.validated_data)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except services.ApprovalError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response({"id": str(job.pk), "state": job.state}, status=status.HTTP_200_OK)


class ApproveView(_DecisionView):
    serializer_class = ApproveSerializer

    @extend_schema(request=ApproveSerializer, responses={200: DecisionResult, 403: OpenApiResponse(description="not an approver, or own job"),
                                                          404: OpenApiResponse(description="no such job"), 409: OpenApiResponse(description="not awaiting approval, or parameters changed")})
    def post(self, request, job_id):
        return super().post(request, job_id)

    def decide(self, job, user, data):
        return services.approve(job, user, params_sha256=data["params_sha256"], comment=data.get("comment", ""))


class RejectView(_DecisionView):
    serializer_class = RejectSerializer

    @extend_schema(request=RejectSerializer, responses={200: DecisionResult, 400: OpenApiResponse(description="no reason"),
                                                         403: OpenApiResponse(description="not an approver, or own job"),
                                                         404: OpenApiResponse(description="no such job"), 409: OpenApiResponse(description="not awaiting approval")})
    def post(self, request, job_id):
        return super().post(request, job_id)

    def decide(self, job, user, data):
        return services.reject(job, user, reason=data["reason"])
