"""Approver pages: the queue, and one held job with its result, history and approve / reject.

The review page shows what will be released (original and result side by side, the
exact parameters, purpose, consent) and every decision on this job and on the job it
revises; the approver keeps read access to jobs they decided.
"""

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
from editplatform.jobs.states import State


def _require_approver(user) -> None:
    if not has_role(user, APPROVER):
        raise PermissionDenied("only approvers see the approval queue")


def _job_for_approver(user, job_id) -> EditJob:
    try:
        return (
            EditJob.objects.visible_to(user)
            .select_related(
                "requester", "original", "reconstruction", "edited", "latent", "resubmitted_from"
            )
            .get(pk=job_id)
        )
    except EditJob.DoesNotExist:
        raise Http404("no such job") from None


@login_required
def queue(request):
    _require_approver(request.user)
    return render(
        request,
        "approvals/queue.html",
        {
            "jobs": services.awaiting_for(request.user)[:200],
            "required": services.required_approvals(),
        },
    )


@login_required
def review(request, job_id):
    _require_approver(request.user)
    job = _job_for_approver(request.user, job_id)
    decisions = Decision.objects.filter(job=job).select_related("approver")
    earlier = []
    previous = job.resubmitted_from
    while previous is not None and len(earlier) < 10:  # the chain of revisions, newest first
        earlier.append(
            (previous, list(Decision.objects.filter(job=previous).select_related("approver")))
        )
        previous = previous.resubmitted_from
    held = job.state == State.AWAITING_APPROVAL
    return render(
        request,
        "approvals/review.html",
        {
            "job": job,
            "held": held,
            "decisions": decisions,
            "earlier": earlier,
            "own_job": job.requester_id == request.user.pk,
            "already_decided": decisions.filter(approver=request.user).exists(),
            "params_sha256": services.current_params_sha256(job),
            "outputs_sha256": services.current_outputs_sha256(job),
            "valid_approvals": len(services.valid_approvals(job)) if held else 0,
            "required": services.required_approvals(),
            "show_outputs": held or job.state == State.SUCCEEDED,
        },
    )


@login_required
@require_POST
def decide(request, job_id):
    _require_approver(request.user)
    job = _job_for_approver(request.user, job_id)
    verdict = request.POST.get("verdict")
    try:
        if verdict == "approve":
            job = services.approve(
                job,
                request.user,
                params_sha256=request.POST.get("params_sha256", ""),
                outputs_sha256=request.POST.get("outputs_sha256", ""),
                comment=request.POST.get("comment", ""),
            )
            if job.state == State.SUCCEEDED:
                messages.success(request, "Approved. The held result is released to the requester.")
            else:
                messages.success(
                    request, "Approved. The result stays held until the remaining approvals."
                )
        elif verdict == "reject":
            services.reject(job, request.user, reason=request.POST.get("reason", ""))
            messages.success(
                request,
                "Rejected; the held result was destroyed and the requester sees your reason.",
            )
        else:
            messages.error(request, "Choose approve or reject.")
            return redirect("approvals:review", job_id=job.pk)
    except DomainError as exc:
        show_error(request, exc)
        return redirect("approvals:review", job_id=job.pk)
    return redirect("approvals:queue")
