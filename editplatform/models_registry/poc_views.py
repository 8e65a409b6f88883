"""Proof-of-concept pages (admins only): start a run, follow it, read its report.

Thin views over :mod:`.poc_runs`. Everyone else gets 403 before any run is looked up, so
a run id tells a non-admin nothing. The HTML report is served with a CSP that allows
no script and no network (``sandbox``): it only holds inline styles and data-URI images.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from editplatform.accounts.roles import ADMIN, has_role
from editplatform.core.errors import DomainError
from editplatform.core.portal import show_error
from editplatform.jobs import artifacts
from editplatform.models_registry import poc_runs
from editplatform.models_registry.forms import PocForm
from editplatform.models_registry.models import PocRun

LIST_LIMIT = 100
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


def _require_admin(user) -> None:
    if not has_role(user, ADMIN):
        raise PermissionDenied("proofs of concept are for admins.")


def _run(run_id) -> PocRun:
    run = (
        PocRun.objects.select_related(
            "model_version", "requested_by", "report_html", "report_json", "photos"
        )
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise Http404("no such proof-of-concept run")
    return run


@login_required
def poc_list(request):
    _require_admin(request.user)
    form = PocForm(
        request.POST or None,
        request.FILES or None,
        initial={"version": request.GET.get("version", "")[:64]},
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            run = poc_runs.start(
                user=request.user,
                version=form.cleaned_data["version"],
                gpu_hour_price=form.cleaned_data["gpu_hour_price"],
                upload=form.cleaned_data["photos"].read(),
            )
        except DomainError as exc:
            status = show_error(request, exc, form)
        else:
            messages.success(request, f"Started: {run.photo_count} photos queued for a worker.")
            return redirect("models_registry:poc_detail", run_id=run.pk)
    elif request.method == "POST":
        status = 400
    runs = PocRun.objects.select_related("model_version", "requested_by")[:LIST_LIMIT]
    return render(
        request, "models_registry/poc_list.html", {"form": form, "runs": runs}, status=status
    )


@login_required
def poc_detail(request, run_id):
    _require_admin(request.user)
    return render(request, "models_registry/poc_detail.html", {"run": _run(run_id)})


@login_required
def poc_status(request, run_id):
    _require_admin(request.user)
    run = _run(run_id)
    return JsonResponse(
        {
            "state": run.state,
            "stage": run.stage,
            "progress": run.progress,
            "finished": run.finished,
            "error": run.error,
        }
    )


def _report(request, run_id, kind: str):
    _require_admin(request.user)
    run = _run(run_id)
    artifact = poc_runs.report_artifact(run, kind)
    if artifact is None:
        raise Http404("the report is not ready (the run has not succeeded)")
    download = kind == "json" or request.GET.get("download") == "1"
    try:
        body = artifacts.read(artifact)
    except DomainError as exc:  # erased, keys unavailable, failed integrity check
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    poc_runs.record_read(run, request.user, kind, download)
    response = HttpResponse(body, content_type=artifact.media_type)
    if download:
        response["Content-Disposition"] = f'attachment; filename="poc-{run.pk}-report.{kind}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = REPORT_CSP
    return response


@login_required
def poc_report(request, run_id):
    return _report(request, run_id, "html")


@login_required
def poc_report_json(request, run_id):
    return _report(request, run_id, "json")
