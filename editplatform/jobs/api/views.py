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
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from editplatform.accounts.models import SCOPE_JOBS_READ, SCOPE_JOBS_WRITE, IntegrationKey
from editplatform.core.api import ApiErrorSerializer
from editplatform.core.errors import DomainError
from editplatform.jobs import access, engine, services, uploads
from editplatform.jobs.api import inline_image
from editplatform.jobs.api.pagination import JobCursorPagination
from editplatform.jobs.api.parsers import BoundedJSONParser
from editplatform.jobs.api.serializers import (
    CatalogSerializer,
    JobCreateJsonSerializer,
    JobCreateSerializer,
    JobSerializer,
)
from editplatform.jobs.api.throttling import KeyJobQuotaThrottle
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State


class JobsAPIView(APIView):
    """Authentication and permissions are the project defaults: an integration's API key
    (scopes checked by HasScope against `required_scopes`) or a person's session with
    CSRF; object-level access comes from `EditJob.objects.visible_to`."""

    required_scopes: dict[str, str | tuple[str, ...]] = {"GET": SCOPE_JOBS_READ}


ERRORS = {
    400: OpenApiResponse(
        ApiErrorSerializer,
        description="invalid image, edits, purpose or consent, or a body "
        "that is not the documented JSON object",
    ),
    403: OpenApiResponse(ApiErrorSerializer, description="the user may not submit jobs"),
    413: OpenApiResponse(ApiErrorSerializer, description="too many bytes or pixels"),
    415: OpenApiResponse(ApiErrorSerializer, description="not a JPEG, PNG or WebP image"),
    422: OpenApiResponse(
        ApiErrorSerializer, description="Idempotency-Key reused for a different request"
    ),
}


class JobListCreateView(JobsAPIView):
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]
    required_scopes = {"GET": SCOPE_JOBS_READ, "POST": SCOPE_JOBS_WRITE}
    throttle_classes = [KeyJobQuotaThrottle]
    pagination_class = (
        JobCursorPagination  # GET pages (and documents) the list: cursors, links, results
    )

    @extend_schema(
        operation_id="jobs_list",
        summary="List jobs",
        description="The jobs you may see, newest first, a page at a time: pass a page's "
        "`next_cursor` as "
        "`cursor` to get the next one.",
        parameters=[
            OpenApiParameter(
                "state", str, description="comma-separated states: " + ", ".join(State.values)
            ),
            OpenApiParameter(
                "created_after", OpenApiTypes.DATETIME, description="ISO 8601 date or datetime"
            ),
            OpenApiParameter(
                "created_before", OpenApiTypes.DATETIME, description="ISO 8601 date or datetime"
            ),
            OpenApiParameter(
                "cursor", str, description="a page's `next_cursor` or `previous_cursor`"
            ),
            OpenApiParameter(
                "page_size", int, description="jobs per page (default 50, at most 200)"
            ),
        ],
        responses={200: JobSerializer(many=True), 400: ApiErrorSerializer},
    )
    def get(self, request):
        jobs = EditJob.objects.visible_to(request.user).select_related(
            "requester", "original", "reconstruction", "edited", "latent"
        )
        paginator = self.pagination_class()
        jobs = filter_jobs(jobs, request.query_params)
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(
        operation_id="jobs_create",
        summary="Submit a job",
        description="Submit a photo and the edits to apply, as one JSON object "
        "(the image in base64, `edits` "
        "an object) or as a multipart form (the image a file part, `edits` JSON text). The job is "
        "queued at once, or waits for approval when an edit is sensitive; poll it with "
        "GET /api/v1/jobs/{job_id}.",
        request={
            "application/json": JobCreateJsonSerializer,
            "multipart/form-data": JobCreateSerializer,
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="a retry with the same key returns the first job (200)",
            )
        ],
        responses={
            201: JobSerializer,
            200: OpenApiResponse(JobSerializer, description="replayed Idempotency-Key"),
            **ERRORS,
        },
    )
    def post(self, request):
        json_body = request.content_type.split(";")[0].strip().lower() == "application/json"
        if json_body:  # sizes are refused before the body is parsed
            inline_image.check_body_size(request.META.get("CONTENT_LENGTH"))
        else:
            uploads.check_request_size(request.META.get("CONTENT_LENGTH"))
        data = request.data
        if not hasattr(data, "get"):
            raise DomainError(
                f"the body must be a JSON object, got {type(data).__name__}", "invalid_body"
            )
        image = request.FILES.get("image")
        if json_body and services.can_submit(
            request.user
        ):  # (submit answers 403 to the others first)
            image = inline_image.decode(data.get(inline_image.FIELD))
        job, created = services.submit(  # the one validator, for both body formats
            user=request.user,
            image=image,
            edits=data.get("edits"),
            purpose=data.get("purpose"),
            consent=data.get("consent"),
            source=EditJob.Source.API,
            idempotency_key=request.headers.get("Idempotency-Key"),
            api_key=request.auth if isinstance(request.auth, IntegrationKey) else None,
            face_index=request.data.get("face_index"),
            quality=request.data.get("quality"),
        )
        return self._answer(job, created=created)

    def _answer(self, job, *, created: bool) -> Response:
        if not created:  # a replay: the earlier job as it is now, read like GET does
            job = access.get_visible_job(self.request.user, job.pk)
        # else the row just committed, in memory (its requester is this user, so it is
        # visible; no output exists yet): no second read with ten joins on the submit path
        response = Response(
            JobSerializer(job).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
        response["Location"] = f"/api/v1/jobs/{job.pk}"
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


def filter_jobs(jobs, params):
    states = [s for s in params.get("state", "").split(",") if s]
    unknown = sorted(set(states) - set(State.values))
    if unknown:
        raise DomainError(
            f"unknown state(s) {unknown}; known: {', '.join(State.values)}",
            "invalid",
            field="state",
        )
    if states:
        jobs = jobs.filter(state__in=states)
    for name, lookup in (
        ("created_after", "created_at__gte"),
        ("created_before", "created_at__lt"),
    ):
        raw = params.get(name)
        if not raw:
            continue
        jobs = jobs.filter(**{lookup: parse_instant(name, raw)})
    return jobs


def parse_instant(name: str, raw: str) -> datetime.datetime:
    """An ISO 8601 date or datetime as an aware UTC datetime; a 400 naming ``name`` otherwise.

    Well-formed but impossible values (2026-02-30, an offset of 99 hours, a moment
    before year 1 in UTC) are refused here rather than failing in the database.
    """
    try:
        value = parse_datetime(raw) or parse_date(raw) if "\x00" not in raw else None
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            value = datetime.datetime.combine(value, datetime.time.min)
        if value is not None:
            if timezone.is_naive(value):
                value = timezone.make_aware(value, datetime.UTC)
            return value.astimezone(datetime.UTC)
        problem = "is not"
    except (ValueError, OverflowError) as exc:
        problem = f"is not a possible date or time ({exc}); expected"
    raise DomainError(
        f"{name} {problem} an ISO 8601 date or datetime, got {raw[:100]!r}", "invalid", field=name
    )


class JobDetailView(JobsAPIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        summary="Get a job",
        description="The job's state, progress, parameters and, once it has succeeded, its "
        "artifacts "
        "(download each from its `url`).",
        responses={200: JobSerializer, 404: ApiErrorSerializer},
    )
    def get(self, request, job_id):
        return Response(JobSerializer(access.get_visible_job(request.user, job_id)).data)


class JobCancelView(JobsAPIView):
    required_scopes = {"POST": SCOPE_JOBS_WRITE}

    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        summary="Cancel a job",
        description="Cancel your own job: at once if it has not started, else the worker stops it "
        "at its next step.",
        responses={
            200: JobSerializer,
            403: ApiErrorSerializer,
            404: ApiErrorSerializer,
            409: ApiErrorSerializer,
        },
    )
    def post(self, request, job_id):
        job = services.cancel(access.get_visible_job(request.user, job_id), request.user)
        return Response(JobSerializer(access.get_visible_job(request.user, job.pk)).data)


class JobArtifactView(JobsAPIView):
    @extend_schema(
        operation_id="jobs_artifact",
        summary="Download an artifact",
        description="The bytes of one artifact of a job: images are PNG, the latent is a "
        "safetensors file. "
        "Send `Accept: application/octet-stream` to get any of them under that generic type. "
        "Once released, `edited` is the marked copy: invisibly watermarked and carrying a signed "
        "C2PA manifest that names the job (its `sha256` in the job's `artifacts` is that copy's; "
        "until marking completes, the unmarked output). "
        "The photo pipeline's full-resolution `result` is marked the same way. "
        "Every download is recorded in the audit log.",
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(access.ARTIFACT_KINDS))
        ],
        # originals and outputs are stored as PNG; the latent as safetensors (access.EXTENSIONS)
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "application/vnd.styleledger.latent+safetensors"): OpenApiTypes.BINARY,
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: ApiErrorSerializer,
            409: ApiErrorSerializer,
            410: ApiErrorSerializer,
        },
    )
    def get(self, request, job_id, kind):
        job = access.get_visible_job(request.user, job_id)
        response = access.artifact_response(
            request.user, job, kind, download=True, purpose="api download"
        )
        if wants_octet_stream(request.headers.get("Accept", ""), response["Content-Type"]):
            response["Content-Type"] = OCTET_STREAM
        return response


OCTET_STREAM = "application/octet-stream"


def wants_octet_stream(accept: str, media_type: str) -> bool:
    """True when the client asked for generic bytes and not for the artifact's own type."""
    asked = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return OCTET_STREAM in asked and media_type.split(";")[0].lower() not in asked


class EditCatalogView(JobsAPIView):
    # Submitting needs the catalog, so either jobs scope may read it.
    required_scopes = {"GET": (SCOPE_JOBS_READ, SCOPE_JOBS_WRITE)}

    @extend_schema(
        operation_id="edits_list",
        summary="The edit catalog",
        description="The edits the loaded model offers, with their strength ranges; `sensitive` "
        "edits make a job wait for approval.",
        responses={200: CatalogSerializer},
    )
    def get(self, request):
        info = engine.get_catalog()
        edits = [
            {
                "name": s.name,
                "description": s.description,
                "min_strength": s.min_strength,
                "max_strength": s.max_strength,
                "default_strength": s.default_strength,
                "sensitive": s.sensitive,
            }
            for s in info.catalog
        ]
        return Response({"model_version": info.version, "edits": edits})
