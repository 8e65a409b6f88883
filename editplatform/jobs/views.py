"""Portal pages for edit jobs: new edit, job page, my jobs, artifact view, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from editplatform.accounts.roles import APPROVER, REVIEWER, has_role
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
        return render(request, "jobs/unavailable.html", {"problem": str(exc)}, status=503)
    status = 200
    if request.method == "POST":
        form = NewJobForm(request.POST, request.FILES, catalog=info.catalog)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
            uploads.check_declared_size(declared - (1 << 20) if declared > (1 << 20) else None)
        except uploads.UploadRejected as exc:
            form = NewJobForm(catalog=info.catalog)
            form.add_error("image", exc.message)
            return render(request, "jobs/new.html", {"form": form, "model_version": info.version}, status=exc.status)
        if form.is_valid():
            try:
                data = uploads.read_upload(form.cleaned_data["image"])
                edits = services.parse_edits(form.requested_edits(), info.catalog)
                image = uploads.validate_image(data)
                job, _ = services.submit(user=request.user, image=image, edits=edits,
                                         purpose=form.cleaned_data["purpose"], consent=form.cleaned_data["consent"],
                                         source=EditJob.Source.PORTAL)
            except uploads.UploadRejected as exc:
                form.add_error("image", exc.message)
                status = exc.status
            except services.JobError as exc:
                target = exc.field if exc.field in form.fields else None
                form.add_error(target, exc.message)
                status = exc.status
            else:
                if job.state == State.AWAITING_APPROVAL:
                    messages.info(request, "Submitted. A sensitive edit needs an approver's decision before it runs.")
                else:
                    messages.success(request, "Submitted. The job is queued for a GPU worker.")
                return redirect("jobs:detail", job_id=job.pk)
        else:
            status = 400
    else:
        form = NewJobForm(catalog=info.catalog)
    return render(request, "jobs/new.html", {"form": form, "model_version": info.version}, status=status)


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
        "panels": [("original", "Original", job.original), ("reconstruction", "Reconstruction", job.reconstruction),
                   ("edited", "Edited", job.edited)],
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
    except services.NotCancellable as exc:
        messages.error(request, exc.message)
    else:
        if job.state == State.CANCELLED:
            messages.success(request, "The job was cancelled.")
        else:
            messages.info(request, "Cancellation requested; the worker stops at its next step.")
    return redirect("jobs:detail", job_id=job.pk)
