"""Project-wide REST conventions: one error shape, and a schema that documents it.

Every API error body is `{"detail": str, "code": str}` (plus `field` when one input is
to blame), rendered here and nowhere else (settings REST_FRAMEWORK EXCEPTION_HANDLER):

* a :class:`~editplatform.core.errors.DomainError` raised by a service, as it is;
* a serializer's ValidationError, as its first error (`code` "invalid", `field` set);
* DRF's framework errors (401, 403, 404, 405, 415, 429, ...) with DRF's error code
  (`not_authenticated`, `permission_denied`, `not_found`, `throttled`, ...).

A path under /api/ that no route matches answers the same shape (:func:`not_found`).

`AutoSchema` documents those framework answers on every operation that can give them,
unless the view documents the status itself: 401 and 403 where permissions apply, 404
where the path has parameters, 429 where a throttle applies.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from editplatform.core.errors import DomainError


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(
        help_text="machine-readable, e.g. not_authenticated, permission_denied, "
        "not_found, throttled, invalid"
    )
    field = serializers.CharField(required=False, help_text="the input to blame, when there is one")


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()  # a refused request leaves nothing half-stored (ATOMIC_REQUESTS or not)
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, ValidationError) and isinstance(exc.detail, dict) and exc.detail:
        field, problems = next(iter(exc.detail.items()))
        problems = problems if isinstance(problems, list) else [problems]
        message = " ".join(str(problem) for problem in problems)
        set_rollback()
        return Response(
            {"detail": f"{field}: {message}", "code": "invalid", "field": field},
            status=exc.status_code,
        )
    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(response.data, dict)
        and isinstance(response.data.get("detail"), str)
        and "code" not in response.data
    ):
        response.data["code"] = getattr(response.data["detail"], "code", None) or "error"
    return response


API_PREFIX = "/api/"


def not_found(request, exception=None):
    """The project's 404 (urls.handler404): the one error shape under /api/, a page elsewhere.

    A path no API route matches (a malformed job id, a typo) never reaches DRF, so
    without this an API client would get an HTML page.
    """
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {
                "detail": f"no API endpoint at {request.path[:200]} (ids are UUIDs)",
                "code": "not_found",
            },
            status=404,
        )
    return defaults.page_not_found(request, exception)


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._framework_errors():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ApiErrorSerializer, description=description),
                    code,
                    direction=direction,
                )
        return responses

    def _framework_errors(self) -> list[tuple[str, str]]:
        errors = []
        if not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            errors += [
                ("401", "no credentials, or an invalid, expired or revoked API key"),
                (
                    "403",
                    "not allowed: the API key lacks the scope, or the person's role does not "
                    "permit it",
                ),
            ]
        if "{" in self.path:
            errors.append(("404", "no such object, or not one you may see"))
        if self.view.get_throttles():
            errors.append(("429", "quota exceeded: retry after the Retry-After header's seconds"))
        return errors
