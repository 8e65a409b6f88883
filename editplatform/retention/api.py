"""REST endpoints for legal holds and data-subject erasure requests (reviewers).

The same rules as the pages in :mod:`editplatform.retention.views`, because both call
:mod:`holds` and :mod:`erasure`: reading needs what the audit trail needs (the
``audit.view_auditevent`` permission and a session verified with a second factor);
acting needs the reviewer role, and lifting a hold or approving an erasure needs a
*second* reviewer (403 ``four_eyes``). API keys have no scope that opens these
endpoints: erasure is a decision people take, in a session.

Ids in the path that do not exist answer 404 naming the id; a job named in a body
that does not exist is a 400 naming the field. Refusals come back in the project's one
error shape (``{detail, code, field}``, :mod:`editplatform.core.api`).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from audit import access
from editplatform.core.api import ApiErrorSerializer
from editplatform.core.errors import DomainError
from editplatform.jobs.models import EditJob
from editplatform.jobs.uploads import read_upload
from editplatform.retention import erasure, holds
from editplatform.retention.models import ErasureRequest, LegalHold

MAX_LIST = 200


class IsRetentionReader(permissions.BasePermission):
    """People who may read the audit trail (permission + second factor), as on the pages."""

    message = access.DENIED_MESSAGE

    def has_permission(self, request, view) -> bool:
        if not access.can_read(request.user):
            self.message = (
                "legal holds and erasure requests are for compliance reviewers "
                f"({access.DENIED_MESSAGE})"
            )
            return False
        if not access.second_factor_ok(request.user):
            self.message = access.UNVERIFIED_MESSAGE
            return False
        return True


class RetentionAPIView(APIView):
    # The defaults (authenticated; an API key needs a declared scope: none is, so keys
    # are refused), narrowed to audit readers.
    permission_classes = [*api_settings.DEFAULT_PERMISSION_CLASSES, IsRetentionReader]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        return response


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


# --- serializers -----------------------------------------------------------------------


class HoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job = serializers.UUIDField(source="job_id")
    reason = serializers.CharField()
    active = serializers.BooleanField()
    placed_by = serializers.SerializerMethodField()
    placed_at = serializers.DateTimeField()
    lift_reason = serializers.CharField(help_text="why lifting was asked for ('' if not yet)")
    lift_requested_by = serializers.SerializerMethodField()
    lift_requested_at = serializers.DateTimeField(allow_null=True)
    lifted_by = serializers.SerializerMethodField()
    lifted_at = serializers.DateTimeField(allow_null=True)

    def get_placed_by(self, hold) -> str:
        return _username(hold.placed_by)

    def get_lift_requested_by(self, hold) -> str | None:
        return _username(hold.lift_requested_by)

    def get_lifted_by(self, hold) -> str | None:
        return _username(hold.lifted_by)


class PlaceHoldSerializer(serializers.Serializer):
    job = serializers.UUIDField(help_text="the job whose artifacts must not be shredded")
    reason = serializers.CharField(max_length=4000, help_text="why (a case, a claim, ...)")


class LiftRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000, help_text="why the hold may end")


class ErasureRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    subject = serializers.CharField(help_text="who asked")
    note = serializers.CharField()
    state = serializers.CharField(help_text="recorded (awaiting a second reviewer) or erased")
    jobs = serializers.SerializerMethodField()
    recorded_by = serializers.SerializerMethodField()
    recorded_at = serializers.DateTimeField()
    approved_by = serializers.SerializerMethodField()
    approved_at = serializers.DateTimeField(allow_null=True)
    certificate_url = serializers.SerializerMethodField(
        help_text="where the signed erasure certificate is (null until approved)"
    )

    def get_jobs(self, request) -> list[str]:
        return [str(pk) for pk in request.jobs.order_by("created_at").values_list("pk", flat=True)]

    def get_recorded_by(self, request) -> str:
        return _username(request.recorded_by)

    def get_approved_by(self, request) -> str | None:
        return _username(request.approved_by)

    def get_certificate_url(self, request) -> str | None:
        if not request.certificate:
            return None
        return f"/api/v1/retention/requests/{request.pk}/certificate"


class RecordRequestSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=200, help_text="who asked for the erasure")
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    jobs = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        default=list,
        max_length=1000,
        help_text="job ids the request covers",
    )
    requester = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=150,
        help_text="an account name: every job it submitted is covered too",
    )


class PhotoLookupRequestSerializer(serializers.Serializer):
    photo = serializers.ImageField(
        help_text="an image the data subject supplied (PNG, JPEG, WebP; the upload limits "
        "of jobs apply)"
    )


class CandidateJobSerializer(serializers.Serializer):
    job = serializers.UUIDField(help_text="add it to a request with POST requests {jobs: [...]}")
    requester = serializers.CharField()
    purpose = serializers.CharField()
    state = serializers.CharField()
    created_at = serializers.DateTimeField()
    evidence = serializers.ListField(
        child=serializers.CharField(),
        help_text="why it matched: 'manifest (Trusted)', 'watermark key ...', 'pdq distance 12'",
    )


class PhotoLookupSerializer(serializers.Serializer):
    candidates = CandidateJobSerializer(many=True, help_text="best match first; may be empty")
    check_seq = serializers.IntegerField(help_text="the provenance.checked audit event")
    lookup_seq = serializers.IntegerField(help_text="the erasure.photo_lookup audit event")


READ_ERRORS = {
    403: OpenApiResponse(
        ApiErrorSerializer,
        description="not a compliance reviewer, no verified second factor, or an API key",
    ),
}
ACT_ERRORS = {
    **READ_ERRORS,
    403: OpenApiResponse(
        ApiErrorSerializer,
        description="not a compliance reviewer, or the same reviewer as the first step "
        "(code four_eyes)",
    ),
    409: OpenApiResponse(ApiErrorSerializer, description="the state forbids it (see detail)"),
}
LIMIT = OpenApiParameter(
    "limit", int, description=f"how many, newest first (default and maximum {MAX_LIST})"
)


def _limit(request) -> int:
    raw = request.query_params.get("limit", "")
    if not raw:
        return MAX_LIST
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise DomainError(f"limit must be a number from 1 to {MAX_LIST}", "invalid", 400, "limit")
    return int(raw)


def _hold(pk: int) -> LegalHold:
    try:
        return LegalHold.objects.select_related("placed_by", "lift_requested_by", "lifted_by").get(
            pk=pk
        )
    except LegalHold.DoesNotExist:
        raise NotFound(f"no legal hold {pk}") from None


def _request(pk: int) -> ErasureRequest:
    try:
        return ErasureRequest.objects.select_related("recorded_by", "approved_by").get(pk=pk)
    except ErasureRequest.DoesNotExist:
        raise NotFound(f"no erasure request {pk}") from None


def _job(job_id) -> EditJob:
    job = EditJob.objects.filter(pk=job_id).first()
    if job is None:
        raise DomainError(f"no job with id {job_id}", "unknown_job", 400, "job")
    return job


# --- legal holds -----------------------------------------------------------------------


class HoldListView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_holds_list",
        parameters=[LIMIT],
        responses={200: HoldSerializer(many=True), **READ_ERRORS},
        description="Legal holds, newest first (active and lifted).",
    )
    def get(self, request):
        rows = LegalHold.objects.select_related("placed_by", "lift_requested_by", "lifted_by")
        return Response(HoldSerializer(rows[: _limit(request)], many=True).data)

    @extend_schema(
        operation_id="retention_holds_place",
        request=PlaceHoldSerializer,
        responses={201: HoldSerializer, 400: ApiErrorSerializer, **ACT_ERRORS},
        description="Place a legal hold on a job: none of its artifacts can be shredded "
        "(retention, erasure requests) until two reviewers lift it.",
    )
    def post(self, request):
        data = PlaceHoldSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hold = holds.place(
            _job(data.validated_data["job"]), request.user, data.validated_data["reason"]
        )
        return Response(HoldSerializer(_hold(hold.pk)).data, status=status.HTTP_201_CREATED)


class HoldDetailView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_holds_retrieve",
        responses={200: HoldSerializer, **READ_ERRORS},
    )
    def get(self, request, pk: int):
        return Response(HoldSerializer(_hold(pk)).data)


class HoldRequestLiftView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_holds_request_lift",
        request=LiftRequestSerializer,
        responses={200: HoldSerializer, 400: ApiErrorSerializer, **ACT_ERRORS},
        description="First pair of eyes: ask to lift the hold (it stays active).",
    )
    def post(self, request, pk: int):
        hold = _hold(pk)
        data = LiftRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        holds.request_lift(hold, request.user, data.validated_data["reason"])
        return Response(HoldSerializer(_hold(pk)).data)


class HoldConfirmLiftView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_holds_confirm_lift",
        request=None,
        responses={200: HoldSerializer, **ACT_ERRORS},
        description="Second pair of eyes: lift a hold another reviewer asked to lift.",
    )
    def post(self, request, pk: int):
        holds.confirm_lift(_hold(pk), request.user)
        return Response(HoldSerializer(_hold(pk)).data)


# --- data-subject requests -------------------------------------------------------------


class RequestListView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_requests_list",
        parameters=[LIMIT],
        responses={200: ErasureRequestSerializer(many=True), **READ_ERRORS},
        description="Data-subject erasure requests, newest first.",
    )
    def get(self, request):
        rows = ErasureRequest.objects.select_related("recorded_by", "approved_by")
        return Response(ErasureRequestSerializer(rows[: _limit(request)], many=True).data)

    @extend_schema(
        operation_id="retention_requests_record",
        request=RecordRequestSerializer,
        responses={201: ErasureRequestSerializer, 400: ApiErrorSerializer, **ACT_ERRORS},
        description="Record a data subject's erasure request: the jobs by id and/or every "
        "job of a requester account. A second reviewer approves it.",
    )
    def post(self, request):
        data = RecordRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if not values["jobs"] and not values["requester"].strip():
            raise DomainError("name the jobs (ids) or a requester account", "no_jobs", 400, "jobs")
        jobs = erasure.find_jobs(values["jobs"], values["requester"])
        found = erasure.record(
            request.user, subject=values["subject"], jobs=jobs, note=values["note"]
        )
        return Response(
            ErasureRequestSerializer(_request(found.pk)).data, status=status.HTTP_201_CREATED
        )


class PhotoLookupView(RetentionAPIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="retention_photo_lookup",
        request={"multipart/form-data": PhotoLookupRequestSerializer},
        responses={
            200: PhotoLookupSerializer,
            400: OpenApiResponse(ApiErrorSerializer, description="no photo, or an empty file"),
            413: OpenApiResponse(ApiErrorSerializer, description="the photo is too large"),
            415: OpenApiResponse(ApiErrorSerializer, description="not an image we read"),
            **READ_ERRORS,
        },
        description='Which jobs made images like this photo? The "was this made here?" '
        "lookup (C2PA manifest, watermark, fingerprints) of a photo a data subject "
        "supplied: candidate jobs a reviewer may add to an erasure request. It finds jobs "
        "whose outputs the photo is or derives from, not other photos of the person (no "
        "face recognition). Reviewers only; recorded as provenance.checked (the photo by a "
        "keyed hash) and erasure.photo_lookup (the candidates). Nothing is erased.",
    )
    def post(self, request):
        uploaded = request.FILES.get("photo")
        if uploaded is None:
            raise DomainError(
                "no photo was uploaded (multipart field 'photo')", "missing", 400, "photo"
            )
        try:
            found = erasure.lookup_photo(read_upload(uploaded), actor=request.user)
        except DomainError as exc:  # an unusable upload blames the jobs' field name
            if exc.field == "image":
                exc.field = "photo"
            raise
        body = {
            "candidates": [
                {
                    "job": job.pk,
                    "requester": job.requester.get_username(),
                    "purpose": job.purpose,
                    "state": job.state,
                    "created_at": job.created_at,
                    "evidence": evidence,
                }
                for job, evidence in found.candidates
            ],
            "check_seq": found.check_seq,
            "lookup_seq": found.lookup_seq,
        }
        return Response(PhotoLookupSerializer(body).data)


class RequestDetailView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_requests_retrieve",
        responses={200: ErasureRequestSerializer, **READ_ERRORS},
    )
    def get(self, request, pk: int):
        return Response(ErasureRequestSerializer(_request(pk)).data)


class RequestApproveView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_requests_approve",
        request=None,
        responses={200: ErasureRequestSerializer, **ACT_ERRORS},
        description="Second reviewer: shred every artifact of the request's jobs (all or "
        "none: a legal hold refuses the whole request, 409 shred_blocked) and issue the "
        "signed certificate.",
    )
    def post(self, request, pk: int):
        erasure.approve(_request(pk), request.user)
        return Response(ErasureRequestSerializer(_request(pk)).data)


class RequestCertificateView(RetentionAPIView):
    @extend_schema(
        operation_id="retention_requests_certificate",
        responses={
            200: OpenApiResponse(
                description="the signed erasure certificate (JSON, Ed25519-signed; "
                "verifiable offline with the audit log's public key)"
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request, pk: int):
        found = _request(pk)
        if not found.certificate:
            raise NotFound(f"erasure request {pk} has no certificate yet: it is not approved")
        response = Response(found.certificate)
        response["Content-Disposition"] = f'attachment; filename="erasure-{found.pk}.json"'
        return response
