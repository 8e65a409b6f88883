"""`POST /api/v1/provenance/check`: was this image made here? (scope `provenance:check`).

People need `provenance.check_provenance` (reviewers). With PROVENANCE_PUBLIC_CHECK on,
`POST /api/v1/provenance/public-check` answers anyone, data-free: made here yes/no and
the job references, nothing about people or purposes; it is rate-limited per client IP
(throttling.py: 429 naming the limit).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from editplatform.accounts.models import SCOPE_PROVENANCE_CHECK, IntegrationKey
from editplatform.core.errors import DomainError
from editplatform.jobs.uploads import read_upload
from editplatform.provenance import services
from editplatform.provenance.access import can_check
from editplatform.provenance.throttling import PublicCheckThrottle

_REQUEST = inline_serializer("ProvenanceCheckRequest", {"image": serializers.ImageField()})
_ERROR = inline_serializer(
    "ProvenanceError", {"detail": serializers.CharField(), "code": serializers.CharField()}
)


class ProvenanceCheckView(APIView):
    parser_classes = [MultiPartParser]
    required_scopes = {"POST": SCOPE_PROVENANCE_CHECK}

    @extend_schema(
        operation_id="provenance_check",
        request={"multipart/form-data": _REQUEST},
        responses={
            200: OpenApiResponse(
                description="the answer: made_here, jobs, manifest, "
                "watermark, fingerprints, audit_seq"
            ),
            400: _ERROR,
            413: _ERROR,
            415: _ERROR,
        },
    )
    def post(self, request):
        if not isinstance(request.auth, IntegrationKey) and not can_check(request.user):
            raise DomainError(
                "checking provenance needs the provenance.check_provenance permission",
                "permission_denied",
                status=status.HTTP_403_FORBIDDEN,
            )
        # bad uploads raise DomainError (4xx), rendered by the project's exception handler
        data = read_upload(request.FILES.get("image"))
        result = services.check_image(data, actor=request.user, channel="api")
        return Response(result.as_dict())


class PublicCheckView(APIView):
    parser_classes = [MultiPartParser]
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [PublicCheckThrottle]

    def throttled(self, request, wait):
        # 429 with the limit named; DRF adds "Expected available in N seconds." and the
        # Retry-After header.
        raise exceptions.Throttled(wait, detail=PublicCheckThrottle().limit_message())

    # Not in the integrations' schema: it is off by default, takes no credentials (so none
    # of the 401/403 answers every documented operation has), and docs/provenance.md
    # describes it for operators who switch it on.
    @extend_schema(exclude=True)
    def post(self, request):
        if not settings.PROVENANCE_PUBLIC_CHECK:
            return Response(
                {
                    "detail": "the public check is off (PROVENANCE_PUBLIC_CHECK)",
                    "code": "not_found",
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        data = read_upload(request.FILES.get("image"))
        result = services.check_image(data, actor=None, channel="public")
        return Response(result.public_dict())
