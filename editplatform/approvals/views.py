"""Approver pages: the queue, and one job with approve / reject."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from editplatform.accounts.roles import APPROVER, has_role
from editplatform.approvals import services
from editplatform.approvals.models import Decision
from editplatform.core.errors import DomainError
from editplatform.core.portal import show_error
from editplatform.jobs.models import EditJob


def _require_approver(user) -> None:
    if not has_role(user, APPROVER):
        raise PermissionDenied("only approvers see the approval queue")


def _job_for_approver(user, job_id) -> EditJob:
    try:
        return EditJob.objects.visible_to(user).select_related("requester", "original").get(pk=job_id)
    except EditJob.DoesNotExist:
        raise Http404("no such job") from None


@login_required
def queue(request):
    _require_approver(request.user)
    return render(request, "approvals/queue.html", {
        "jobs": services.awaiting_for(request.user)[:200],
        "required": services.required_approvals(),
    })


@login_required
def review(request, job_id):
    _require_approver(request.user)
    job = _job_for_approver(request.user, job_id)
    decisions = Decision.objects.filter(job=job).select_related("approver")
    return render(request, "approvals/review.html", {
        "job": job,
        "decisions": decisions,
        "own_job": job.requester_id == request.user.pk,
        "already_decided": decisions.filter(approver=request.user).exists(),
        "params_sha256": services.current_params_sha256(job),
        "valid_approvals": len(services.valid_approvals(job)),
        "required": services.required_approvals(),
    })


@login_required
@require_POST
def decide(request, job_id):
    _require_approver(request.user)
    job = _job_for_approver(request.user, job_id)
    verdict = request.POST.get("verdict")
    try:
        if verdict == "approve":
            job = services.approve(job, request.user, params_sha256=request.POST.get("params_sha256", ""),
                                   comment=request.POST.get("comment", ""))
            messages.success(request, f"Approved. The job is now {job.get_state_display().lower()}.")
        elif verdict == "reject":
            services.reject(job, request.user, reason=request.POST.get("reason", ""))
            messages.success(request, "Rejected; the requester sees your reason.")
        else:
            messages.error(request, "Choose approve or reject.")
            return redirect("approvals:review", job_id=job.pk)
    except DomainError as exc:
        show_error(request, exc)
        return redirect("approvals:review", job_id=job.pk)
    return redirect("approvals:queue")
