"""The "Was this made here?" pages: the reviewer's (everything the platform knows about
the matching jobs) and, with PROVENANCE_PUBLIC_CHECK on, a public one for anyone outside
(made here or not, the job reference and the audit log entry that proves it — no
people, purposes or edits), rate-limited per client IP like the public API."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from editplatform.core.errors import DomainError
from editplatform.jobs.uploads import read_upload
from editplatform.provenance import services
from editplatform.provenance.access import checker_required
from editplatform.provenance.throttling import PublicCheckThrottle


@checker_required
@require_http_methods(["GET", "POST"])
def check(request):
    context: dict = {}
    status = 200
    if request.method == "POST":
        try:
            data = read_upload(request.FILES.get("image"))
            context["result"] = services.check_image(
                data, actor=request.user, channel="portal"
            ).as_dict()
        except DomainError as exc:
            context["error"] = exc.message
            status = exc.status
    return render(request, "provenance/check.html", context, status=status)


@require_http_methods(["GET", "POST"])
def public_check(request):
    if not settings.PROVENANCE_PUBLIC_CHECK:
        raise Http404("the public check is off (PROVENANCE_PUBLIC_CHECK)")
    context: dict = {}
    status = 200
    if request.method == "POST":
        throttle = PublicCheckThrottle()
        if not throttle.allow_request(request, None):
            wait = throttle.wait()
            context["error"] = (
                f"{throttle.limit_message()} Try again in {max(1, round(wait or 1))} s."
            )
            response = render(request, "provenance/public_check.html", context, status=429)
            response["Retry-After"] = str(max(1, round(wait or 1)))
            return response
        try:
            data = read_upload(request.FILES.get("image"))
            context["result"] = services.check_image(
                data, actor=None, channel="public-page"
            ).public_dict()
        except DomainError as exc:
            context["error"] = exc.message
            status = exc.status
    return render(request, "provenance/public_check.html", context, status=status)
