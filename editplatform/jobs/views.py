"""Portal pages for edit jobs: new edit, job page, my jobs, artifact view, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from editplatform.accounts.roles import APPROVER, REVIEWER, has_role
from editplatform.core.errors import DomainError
from editplatform.core.portal import show_error
from editplatform.jobs import access, engine, services, uploads
from editplatform.jobs.forms import NewJobForm
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State


@login_required
def new_job(request):
    if not services.can_submit(request.user):
        raise PermissionDenied("only requesters may submit edit jobs")
    try:
        info = engine.get_catalog()
    except engine.ModelUnavailable as exc:
        return render(request, "jobs/unavailable.html", {"problem": exc.problem}, status=503)
    status = 200
    if request.method == "POST":
        try:
            uploads.check_request_size(request.META.get("CONTENT_LENGTH"))  # before the body is parsed
        except DomainError as exc:
            form = NewJobForm(NewJobForm.neutral_data(info.catalog), catalog=info.catalog)
            form.full_clean()
            status = show_error(request, exc, form)
            return render(request, "jobs/new.html", {"form": form, "model_version": info.version,
                                                  "domain": info.domain}, status=status)
        form = NewJobForm(request.POST, request.FILES, catalog=info.catalog)
        form.full_clean()  # the form only shapes the input; the service decides
        try:
            job, _ = services.submit(user=request.user, image=form.cleaned_data.get("image"),
                                     edits=form.requested_edits(), purpose=form.cleaned_data.get("purpose"),
                                     consent=form.cleaned_data.get("consent"), source=EditJob.Source.PORTAL,
                                     face_index=request.POST.get("face_index"))
        except DomainError as exc:
            status = show_error(request, exc, form)
        else:
            if job.state == State.AWAITING_APPROVAL:
                messages.info(request, "Submitted. A sensitive edit needs an approver's decision before it runs.")
            else:
                messages.success(request, "Submitted. The job is queued for a GPU worker.")
            return redirect("jobs:detail", job_id=job.pk)
    else:
        form = NewJobForm(catalog=info.catalog)
    return render(request, "jobs/new.html", {"form": form, "model_version": info.version,
                                                  "domain": info.domain}, status=status)


@login_required
def job_list(request):
    can_see_others = has_role(request.user, REVIEWER) or has_role(request.user, APPROVER)
    scope = "all" if can_see_others and request.GET.get("scope") == "all" else "mine"
    jobs = EditJob.objects.visible_to(request.user) if scope == "all" else EditJob.objects.owned_by(request.user)
    state = request.GET.get("state", "")
    if state in State.values:
        jobs = jobs.filter(state=state)
    page = Paginator(jobs.select_related("requester"), 25).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {
        "page": page, "scope": scope, "can_see_others": can_see_others, "state": state, "states": State.choices,
        "can_submit": services.can_submit(request.user),
    })


@login_required
def job_detail(request, job_id):
    job = access.get_visible_job(request.user, job_id)
    return render(request, "jobs/detail.html", {
        "job": job, "can_cancel": job.requester_id == request.user.pk and not job.is_terminal,
        "panels": [("original", "Original", job.original), ("aligned", "Aligned crop (model input)", job.aligned),
                   ("reconstruction", "Reconstruction", job.reconstruction), ("edited", "Edited crop", job.edited)],
        "report": job.domain_report or {},
    })


@login_required
def job_artifact(request, job_id, kind):
    job = access.get_visible_job(request.user, job_id)
    download = request.GET.get("download") == "1"
    return access.artifact_response(request.user, job, kind, download=download,
                                    purpose="portal download" if download else "portal view")


@login_required
@require_POST
def job_cancel(request, job_id):
    job = access.get_visible_job(request.user, job_id)
    try:
        job = services.cancel(job, request.user)
    except DomainError as exc:
        show_error(request, exc)
    else:
        if job.state == State.CANCELLED:
            messages.success(request, "The job was cancelled.")
        else:
            messages.info(request, "Cancellation requested; the worker stops at its next step.")
    return redirect("jobs:detail", job_id=job.pk)
