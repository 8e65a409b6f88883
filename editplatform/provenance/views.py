"""The reviewer's "Was this made here?" page: upload an image, read the answer."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from editplatform.core.errors import DomainError
from editplatform.jobs.uploads import read_upload
from editplatform.provenance import services
from editplatform.provenance.access import checker_required


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
