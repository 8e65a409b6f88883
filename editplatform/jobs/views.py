"""Portal pages for edit jobs: new edit (or a revision of a rejected one), job page with
its decision history, my jobs, artifact view, cancel."""

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
from editplatform.jobs import access, artifacts, engine, holding, services, uploads
from editplatform.jobs.forms import NewJobForm
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import HELD, State


def _resubmitted(user, job_id) -> EditJob | None:
    """The user's own rejected or expired job a new one revises (None when none is named)."""
    if not job_id:
        return None
    job = access.get_visible_job(user, job_id)
    try:
        services.check_resubmittable(job, user)
    except DomainError as exc:
        raise PermissionDenied(exc.message) from None
    return job


def _prefilled(job: EditJob, catalog) -> dict:
    """A new-job form's initial values taken from the job it revises (edits, purpose,
    quality)."""
    initial = {"purpose": job.purpose, "resubmit_from": job.pk, "quality": job.quality}
    for spec in catalog:
        if spec.name in job.edits:
            initial[f"edit_{spec.name}"] = f"{job.edits[spec.name]:g}"
    return initial


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
            uploads.check_request_size(
                request.META.get("CONTENT_LENGTH")
            )  # before the body is parsed
        except DomainError as exc:
            form = NewJobForm(NewJobForm.neutral_data(info.catalog), catalog=info.catalog)
            form.full_clean()
            status = show_error(request, exc, form)
            return render(
                request,
                "jobs/new.html",
                {"form": form, "model_version": info.version, "domain": info.domain},
                status=status,
            )
        form = NewJobForm(request.POST, request.FILES, catalog=info.catalog)
        form.full_clean()  # the form only shapes the input; the service decides
        resubmit = _resubmitted(request.user, form.cleaned_data.get("resubmit_from"))
        image = form.cleaned_data.get("image")
        if image is None and resubmit is not None:
            image = artifacts.read(
                resubmit.original
            )  # the revision reuses the rejected job's photo
        try:
            job, _ = services.submit(
                user=request.user,
                image=image,
                edits=form.requested_edits(),
                purpose=form.cleaned_data.get("purpose"),
                consent=form.cleaned_data.get("consent"),
                source=EditJob.Source.PORTAL,
                resubmitted_from=resubmit,
                face_index=request.POST.get("face_index"),
                quality=request.POST.get("quality"),
            )
        except DomainError as exc:
            status = show_error(request, exc, form)
        else:
            if job.needs_approval:
                messages.info(
                    request,
                    "Submitted. A sensitive edit is computed first; an approver then "
                    "decides on the result before you can see it.",
                )
            else:
                messages.success(request, "Submitted. The job is queued for a GPU worker.")
            return redirect("jobs:detail", job_id=job.pk)
    else:
        resubmit = _resubmitted(request.user, request.GET.get("resubmit"))
        initial = _prefilled(resubmit, info.catalog) if resubmit is not None else None
        form = NewJobForm(initial=initial, catalog=info.catalog)
    return render(
        request,
        "jobs/new.html",
        {"form": form, "model_version": info.version, "resubmit": resubmit, "domain": info.domain},
        status=status,
    )


@login_required
def job_list(request):
    can_see_others = has_role(request.user, REVIEWER) or has_role(request.user, APPROVER)
    scope = "all" if can_see_others and request.GET.get("scope") == "all" else "mine"
    jobs = (
        EditJob.objects.visible_to(request.user)
        if scope == "all"
        else EditJob.objects.owned_by(request.user)
    )
    state = request.GET.get("state", "")
    if state in State.values:
        jobs = jobs.filter(state=state)
    page = Paginator(jobs.select_related("requester"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "jobs/list.html",
        {
            "page": page,
            "scope": scope,
            "can_see_others": can_see_others,
            "state": state,
            "states": State.choices,
            "can_submit": services.can_submit(request.user),
        },
    )


@login_required
def job_detail(request, job_id):
    job = access.get_visible_job(request.user, job_id)
    outputs = holding.may_read_outputs(request.user, job)
    own = job.requester_id == request.user.pk
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "can_cancel": own and not job.is_terminal,
            "held": job.state == HELD,
            "outputs_visible": outputs,
            "can_resubmit": own
            and job.state in services.RESUBMITTABLE
            and services.can_submit(request.user),
            # `decisions` is the approvals app's reverse relation (no import: jobs sit below it).
            "decisions": job.decisions.select_related("approver").order_by("created_at"),
            "resubmissions": job.resubmissions.order_by("created_at"),
            "panels": [
                ("original", "Original", job.original),
                ("aligned", "Aligned crop (model input)", job.aligned if outputs else None),
                ("reconstruction", "Reconstruction", job.reconstruction if outputs else None),
                ("edited", "Edited crop", job.edited if outputs else None),
            ],
            "result": job.result if outputs else None,
            "report": job.domain_report or {},
        },
    )


@login_required
def job_artifact(request, job_id, kind):
    job = access.get_visible_job(request.user, job_id)
    download = request.GET.get("download") == "1"
    return access.artifact_response(
        request.user,
        job,
        kind,
        download=download,
        purpose="portal download" if download else "portal view",
    )


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
