"""REST API v1 for edit jobs: thin views over services and access.

Refusals are :class:`DomainError`s raised by the services; the project's exception
handler renders them (editplatform.core.api), so no view maps errors itself.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from editplatform.accounts.models import SCOPE_JOBS_READ, SCOPE_JOBS_WRITE, IntegrationKey
from editplatform.core.api import ApiErrorSerializer
from editplatform.core.errors import DomainError
from editplatform.jobs import access, engine, services, uploads
from editplatform.jobs.api.serializers import CatalogSerializer, JobCreateSerializer, JobSerializer
from editplatform.jobs.api.throttling import KeyJobQuotaThrottle
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State


class JobsAPIView(APIView):
    """Authentication and permissions are the project defaults: an integration's API key
    (scopes checked by HasScope against `required_scopes`) or a person's session with
    CSRF; object-level access comes from `EditJob.objects.visible_to`."""

    required_scopes: dict[str, str | tuple[str, ...]] = {"GET": SCOPE_JOBS_READ}


class JobCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers 404 for a malformed cursor; it is a bad parameter
            raise DomainError("cursor is not one this API returned", "invalid_cursor", field="cursor") from None


ERRORS = {
    400: OpenApiResponse(ApiErrorSerializer, description="invalid image, edits, purpose or consent"),
    403: OpenApiResponse(ApiErrorSerializer, description="the user may not submit jobs"),
    413: OpenApiResponse(ApiErrorSerializer, description="too many bytes or pixels"),
    415: OpenApiResponse(ApiErrorSerializer, description="not a JPEG, PNG or WebP image"),
    422: OpenApiResponse(ApiErrorSerializer, description="Idempotency-Key reused for a different request"),
}


class JobListCreateView(JobsAPIView):
    parser_classes = [MultiPartParser, FormParser]
    required_scopes = {"GET": SCOPE_JOBS_READ, "POST": SCOPE_JOBS_WRITE}
    throttle_classes = [KeyJobQuotaThrottle]
    pagination_class = JobCursorPagination  # GET pages (and documents) the list: next, previous, results

    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            OpenApiParameter("state", str, description="comma-separated states: " + ", ".join(State.values)),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="ISO 8601 date or datetime"),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="ISO 8601 date or datetime"),
            OpenApiParameter("cursor", str), OpenApiParameter("page_size", int),
        ],
        responses={200: JobSerializer(many=True), 400: ApiErrorSerializer},
    )
    def get(self, request):
        jobs = EditJob.objects.visible_to(request.user).select_related(
            "requester", "original", "reconstruction", "edited", "latent")
        paginator = self.pagination_class()
        jobs = filter_jobs(jobs, request.query_params)
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(
        operation_id="jobs_create",
        request={"multipart/form-data": JobCreateSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                     description="a retry with the same key returns the first job (200)")],
        responses={201: JobSerializer, 200: OpenApiResponse(JobSerializer, description="replayed Idempotency-Key"),
                   **ERRORS},
    )
    def post(self, request):
        uploads.check_request_size(request.META.get("CONTENT_LENGTH"))  # before the body is parsed
        job, created = services.submit(
            user=request.user, image=request.FILES.get("image"), edits=request.data.get("edits"),
            purpose=request.data.get("purpose"), consent=request.data.get("consent"),
            source=EditJob.Source.API, idempotency_key=request.headers.get("Idempotency-Key"),
            api_key=request.auth if isinstance(request.auth, IntegrationKey) else None,
            face_index=request.data.get("face_index"),
        )
        return self._answer(job, created=created)

    def _answer(self, job, *, created: bool) -> Response:
        job = access.get_visible_job(self.request.user, job.pk)
        response = Response(JobSerializer(job).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
        response["Location"] = f"/api/v1/jobs/{job.pk}"
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


def filter_jobs(jobs, params):
    states = [s for s in params.get("state", "").split(",") if s]
    unknown = sorted(set(states) - set(State.values))
    if unknown:
        raise DomainError(f"unknown state(s) {unknown}; known: {', '.join(State.values)}", "invalid",
                          field="state")
    if states:
        jobs = jobs.filter(state__in=states)
    for name, lookup in (("created_after", "created_at__gte"), ("created_before", "created_at__lt")):
        raw = params.get(name)
        if not raw:
            continue
        value = parse_datetime(raw) or parse_date(raw)
        if value is None:
            raise DomainError(f"{name} must be an ISO 8601 date or datetime, got {raw!r}", "invalid",
                              field=name)
        if not isinstance(value, datetime.datetime):
            value = datetime.datetime.combine(value, datetime.time.min)
        if timezone.is_naive(value):
            value = timezone.make_aware(value, datetime.UTC)
        jobs = jobs.filter(**{lookup: value})
    return jobs


class JobDetailView(JobsAPIView):
    @extend_schema(operation_id="jobs_retrieve", responses={200: JobSerializer, 404: ApiErrorSerializer})
    def get(self, request, job_id):
        return Response(JobSerializer(access.get_visible_job(request.user, job_id)).data)


class JobCancelView(JobsAPIView):
    required_scopes = {"POST": SCOPE_JOBS_WRITE}

    @extend_schema(operation_id="jobs_cancel", request=None,
                   responses={200: JobSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer, 409: ApiErrorSerializer})
    def post(self, request, job_id):
        job = services.cancel(access.get_visible_job(request.user, job_id), request.user)
        return Response(JobSerializer(access.get_visible_job(request.user, job.pk)).data)


class JobArtifactView(JobsAPIView):
    @extend_schema(
        operation_id="jobs_artifact",
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(access.ARTIFACT_KINDS))],
        # originals and outputs are stored as PNG; the latent as safetensors (access.EXTENSIONS)
        responses={(200, "image/png"): OpenApiTypes.BINARY,
                   (200, "application/vnd.styleledger.latent+safetensors"): OpenApiTypes.BINARY,
                   404: ApiErrorSerializer},
    )
    def get(self, request, job_id, kind):
        job = access.get_visible_job(request.user, job_id)
        return access.artifact_response(request.user, job, kind, download=True, purpose="api download")


class EditCatalogView(JobsAPIView):
    # Submitting needs the catalog, so either jobs scope may read it.
    required_scopes = {"GET": (SCOPE_JOBS_READ, SCOPE_JOBS_WRITE)}
    @extend_schema(operation_id="edits_list", responses={200: CatalogSerializer})
    def get(self, request):
        info = engine.get_catalog()
        edits = [
            {"name": s.name, "description": s.description, "min_strength": s.min_strength,
             "max_strength": s.max_strength, "default_strength": s.default_strength, "sensitive": s.sensitive}
            for s in info.catalog
        ]
        return Response({"model_version": info.version, "edits": edits})
