"""Reviewer pages: retention policies in force, legal holds, data-subject requests.

Thin: every rule lives in :mod:`holds`, :mod:`erasure` and :mod:`policies`; a refused
action (four eyes, a hold, an unknown job) comes back as a message on the page.
Reading needs what the audit trail needs (``reader_required``: permission and 2FA);
acting needs the reviewer role, checked by the services.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit.access import reader_required
from editplatform.core.errors import DomainError
from editplatform.core.portal import show_error
from editplatform.jobs.models import EditJob
from editplatform.retention import erasure, holds, policies
from editplatform.retention.models import ErasureRequest, LegalHold, RetentionPolicy

KINDS = [kind for kind, _label in RetentionPolicy.KINDS]


@require_GET
@reader_required
def overview(request):
    rows = list(RetentionPolicy.objects.all())
    return render(
        request,
        "retention/overview.html",
        {
            "defaults": [(kind, settings.RETENTION_DAYS.get(kind)) for kind in KINDS],
            "overrides": rows,
            "holds": LegalHold.objects.select_related("job", "placed_by", "lift_requested_by")[
                :200
            ],
            "requests": ErasureRequest.objects.select_related(
                "recorded_by", "approved_by"
            ).prefetch_related("jobs")[:200],
        },
    )


def _act(request, action, success: str):
    try:
        action()
    except DomainError as exc:
        show_error(request, exc)
    else:
        messages.success(request, success)
    return redirect("retention:overview")


def _job(job_id: str) -> EditJob:
    jobs = erasure.find_jobs([job_id])
    if not jobs:
        raise DomainError("name the job to hold", "no_jobs", 400, "job")
    return jobs[0]


@require_POST
@reader_required
def place_hold(request):
    return _act(
        request,
        lambda: holds.place(
            _job(request.POST.get("job", "")), request.user, request.POST.get("reason", "")
        ),
        "Legal hold placed: the job's artifacts cannot be shredded until two reviewers lift it.",
    )


def _hold(pk) -> LegalHold:
    try:
        return LegalHold.objects.get(pk=pk)
    except LegalHold.DoesNotExist:
        raise Http404("no such legal hold") from None


@require_POST
@reader_required
def request_lift(request, pk: int):
    return _act(
        request,
        lambda: holds.request_lift(_hold(pk), request.user, request.POST.get("reason", "")),
        "Lifting asked for: a second reviewer must confirm.",
    )


@require_POST
@reader_required
def confirm_lift(request, pk: int):
    return _act(request, lambda: holds.confirm_lift(_hold(pk), request.user), "Legal hold lifted.")


@require_POST
@reader_required
def record_request(request):
    def action():
        ids = request.POST.get("jobs", "").replace(",", " ").split()
        jobs = erasure.find_jobs(ids, request.POST.get("requester", ""))
        photo = request.FILES.get("photo")
        if photo is not None:
            jobs += [
                j for j in erasure.jobs_for_photo(photo.read(), actor=request.user) if j not in jobs
            ]
        erasure.record(
            request.user,
            subject=request.POST.get("subject", ""),
            jobs=jobs,
            note=request.POST.get("note", ""),
        )

    return _act(request, action, "Erasure request recorded: a second reviewer must approve it.")


def _request(pk) -> ErasureRequest:
    try:
        return ErasureRequest.objects.get(pk=pk)
    except ErasureRequest.DoesNotExist:
        raise Http404("no such erasure request") from None


@require_POST
@reader_required
def approve_request(request, pk: int):
    return _act(
        request,
        lambda: erasure.approve(_request(pk), request.user),
        "Erasure carried out: every artifact of the request's jobs is shredded; "
        "the certificate is ready.",
    )


@require_GET
@reader_required
def certificate(request, pk: int):
    found = _request(pk)
    if not found.certificate:
        raise Http404("no certificate yet")
    response = JsonResponse(found.certificate, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="erasure-{found.pk}.json"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@reader_required
def run_now(request):
    def action():
        from editplatform.accounts.roles import REVIEWER, has_role

        if not has_role(request.user, REVIEWER):
            raise DomainError("only compliance reviewers run retention", "forbidden", 403)
        result = policies.run()
        messages.info(
            request,
            f"{len(result['shredded'])} artifact(s) shredded, "
            f"{len(result['blocked'])} blocked by legal hold.",
        )

    return _act(request, action, "Retention run finished.")
