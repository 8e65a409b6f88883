"""REST API v1 for edit jobs: thin views over services, access and uploads."""

from __future__ import annotations

import datetime
import hashlib

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
from editplatform.accounts.throttling import KeyJobQuotaThrottle
from editplatform.jobs import access, engine, services, uploads
from editplatform.jobs.api.serializers import (
    CatalogSerializer,
    ErrorSerializer,
    JobCreateSerializer,
    JobSerializer,
)
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State

FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other multipart fields


class JobsAPIView(APIView):
    """Authentication and permissions are the project defaults: an integration's API key
    (scopes checked by HasScope against `required_scopes`) or a person's session with
    CSRF; object-level access comes from `EditJob.objects.visible_to`."""

    required_scopes: dict[str, str | tuple[str, ...]] = {"GET": SCOPE_JOBS_READ}


def error_response(exc) -> Response:
    return Response(exc.as_dict(), status=exc.status)


def model_unavailable(exc) -> Response:
    return Response({"detail": f"the model is not available: {exc}", "code": "model_unavailable"},
                    status=status.HTTP_503_SERVICE_UNAVAILABLE)


class JobCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers 404 for a malformed cursor; it is a bad parameter
            raise services.JobError("cursor is not one this API returned", field="cursor", code="invalid_cursor") \
                from None


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="invalid image, edits, purpose or consent"),
    403: OpenApiResponse(ErrorSerializer, description="the user may not submit jobs"),
    413: OpenApiResponse(ErrorSerializer, description="too many bytes or pixels"),
    415: OpenApiResponse(ErrorSerializer, description="not a JPEG, PNG or WebP image"),
    422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused for a different request"),
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
        responses={200: JobSerializer(many=True), 400: ErrorSerializer},
    )
    def get(self, request):
        jobs = EditJob.objects.visible_to(request.user).select_related(
            "requester", "original", "reconstruction", "edited", "latent")
        paginator = self.pagination_class()
        try:
            jobs = filter_jobs(jobs, request.query_params)
            page = paginator.paginate_queryset(jobs, request, view=self)
        except services.JobError as exc:
            return error_response(exc)
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
        if not services.can_submit(request.user):
            return Response({"detail": "only requesters and integrations may submit edit jobs", "code": "forbidden"},
                            status=status.HTTP_403_FORBIDDEN)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
            uploads.check_declared_size(declared - FORM_OVERHEAD_BYTES if declared > FORM_OVERHEAD_BYTES else None)
            data = uploads.read_upload(request.FILES.get("image"))
            catalog = engine.get_catalog().catalog
            edits = services.parse_edits(request.data.get("edits"), catalog)
            purpose = services.clean_purpose(request.data.get("purpose"))
            consent = str(request.data.get("consent", "")).strip().lower() in ("true", "1", "yes", "on")
            services.require_consent(consent)
            key = services.clean_idempotency_key(request.headers.get("Idempotency-Key"))
            if key:  # a replay answers before the image is decoded again
                replay = services.find_replay(request.user, key, services.idempotency_fingerprint(
                    hashlib.sha256(data).hexdigest(), edits, purpose))
                if replay is not None:
                    return self._answer(replay, created=False)
            image = uploads.validate_image(data)
            job, created = services.submit(user=request.user, image=image, edits=edits, purpose=purpose,
                                           consent=consent, source=EditJob.Source.API, idempotency_key=key,
                                           api_key=request.auth if isinstance(request.auth, IntegrationKey) else None)
        except (uploads.UploadRejected, services.JobError) as exc:
            return error_response(exc)
        except engine.ModelUnavailable as exc:
            return model_unavailable(exc)
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
        raise services.JobError(f"unknown state(s) {unknown}; known: {', '.join(State.values)}", field="state")
    if states:
        jobs = jobs.filter(state__in=states)
    for name, lookup in (("created_after", "created_at__gte"), ("created_before", "created_at__lt")):
        raw = params.get(name)
        if not raw:
            continue
        value = parse_datetime(raw) or parse_date(raw)
        if value is None:
            raise services.JobError(f"{name} must be an ISO 8601 date or datetime, got {raw!r}", field=name)
        if not isinstance(value, datetime.datetime):
            value = datetime.datetime.combine(value, datetime.time.min)
        if timezone.is_naive(value):
            value = timezone.make_aware(value, datetime.UTC)
        jobs = jobs.filter(**{lookup: value})
    return jobs


class JobDetailView(JobsAPIView):
    @extend_schema(operation_id="jobs_retrieve", responses={200: JobSerializer, 404: ErrorSerializer})
    def get(self, request, job_id):
        return Response(JobSerializer(access.get_visible_job(request.user, job_id)).data)


class JobCancelView(JobsAPIView):
    required_scopes = {"POST": SCOPE_JOBS_WRITE}

    @extend_schema(operation_id="jobs_cancel", request=None,
                   responses={200: JobSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request, job_id):
        job = access.get_visible_job(request.user, job_id)
        try:
            job = services.cancel(job, request.user)
        except services.JobError as exc:
            return error_response(exc)
        return Response(JobSerializer(access.get_visible_job(request.user, job.pk)).data)


class JobArtifactView(JobsAPIView):
    @extend_schema(
        operation_id="jobs_artifact",
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(access.ARTIFACT_KINDS))],
        # originals and outputs are stored as PNG; the latent as safetensors (access.EXTENSIONS)
        responses={(200, "image/png"): OpenApiTypes.BINARY,
                   (200, "application/vnd.styleledger.latent+safetensors"): OpenApiTypes.BINARY,
                   404: ErrorSerializer},
    )
    def get(self, request, job_id, kind):
        job = access.get_visible_job(request.user, job_id)
        return access.artifact_response(request.user, job, kind, download=True, purpose="api download")


class EditCatalogView(JobsAPIView):
    # Submitting needs the catalog, so either jobs scope may read it.
    required_scopes = {"GET": (SCOPE_JOBS_READ, SCOPE_JOBS_WRITE)}
    @extend_schema(operation_id="edits_list", responses={200: CatalogSerializer})
    def get(self, request):
        try:
            info = engine.get_catalog()
        except engine.ModelUnavailable as exc:
            return model_unavailable(exc)
        edits = [
            {"name": s.name, "description": s.description, "min_strength": s.min_strength,
             "max_strength": s.max_strength, "default_strength": s.default_strength, "sensitive": s.sensitive}
            for s in info.catalog
        ]
        return Response({"model_version": info.version, "edits": edits})
