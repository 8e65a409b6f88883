"""Model pages: the list and each version's card (all staff), the history (reviewers),
registration (admins) and the approve / activate / retire buttons on the card.

Thin views: the rules (who may do what, four-eyes, hash binding) live in services.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.queries import filter_events
from editplatform.accounts.roles import ADMIN, HUMAN_ROLE_NAMES, has_role, roles_of
from editplatform.core.errors import DomainError
from editplatform.core.portal import show_error
from editplatform.models_registry import services
from editplatform.models_registry.forms import RegisterForm
from editplatform.models_registry.models import ModelVersion

HISTORY_LIMIT = 500


def _require_staff(user) -> None:
    if not roles_of(user) & HUMAN_ROLE_NAMES:
        raise PermissionDenied("model pages are for staff")


def _version(version: str) -> ModelVersion:
    row = ModelVersion.objects.filter(version=version).first()
    if row is None:
        raise Http404(
            f"model version {version[:12]} is not registered (it may have run from the "
            "configured bundle before the registry held any model)"
        )
    return row


@login_required
def model_list(request):
    _require_staff(request.user)
    versions = ModelVersion.objects.select_related("registered_by", "activated_by")
    return render(
        request,
        "models_registry/list.html",
        {"versions": versions, "is_admin": has_role(request.user, ADMIN)},
    )


@login_required
def card(request, version):
    _require_staff(request.user)
    row = _version(version)
    user = request.user
    is_admin = has_role(user, ADMIN)
    is_approver = services.is_model_approver(user)
    parent = (
        ModelVersion.objects.filter(version=row.parent_version).first()
        if row.parent_version
        else None
    )
    return render(
        request,
        "models_registry/card.html",
        {
            "mv": row,
            "card": row.card,
            "parent": parent,
            "children": ModelVersion.objects.filter(parent_version=row.version),
            "can_approve": is_approver and row.state == ModelVersion.State.REGISTERED,
            "can_activate": is_admin
            and row.state == ModelVersion.State.APPROVED
            and row.approved_by_id != user.pk,
            "own_approval": row.state == ModelVersion.State.APPROVED
            and row.approved_by_id == user.pk,
            "can_retire": is_admin
            and row.state in (ModelVersion.State.REGISTERED, ModelVersion.State.APPROVED),
            "can_see_history": user.has_perm("audit.view_auditevent"),
            "is_admin": is_admin,
        },
    )


def _act(request, version, step):
    row = _version(version)
    try:
        step(row)
    except DomainError as exc:
        show_error(request, exc)
    return redirect("models_registry:card", version=row.version)


@login_required
@require_POST
def approve(request, version):
    if not services.is_model_approver(request.user):
        raise PermissionDenied("only model approvers approve model versions")

    def step(row):
        services.approve(
            row,
            request.user,
            bundle_sha256=request.POST.get("bundle_sha256", ""),
            comment=request.POST.get("comment", ""),
        )
        messages.success(request, "Approved. A second person (an admin) can now activate it.")

    return _act(request, version, step)


@login_required
@require_POST
def activate(request, version):
    if not has_role(request.user, ADMIN):
        raise PermissionDenied("only admins activate model versions")

    def step(row):
        services.activate(row, request.user, bundle_sha256=request.POST.get("bundle_sha256", ""))
        messages.success(request, "Activated: new jobs use this version.")

    return _act(request, version, step)


@login_required
@require_POST
def retire(request, version):
    if not has_role(request.user, ADMIN):
        raise PermissionDenied("only admins retire model versions")

    def step(row):
        services.retire(row, request.user, reason=request.POST.get("reason", ""))
        messages.success(request, "Retired: no job runs with this version again.")

    return _act(request, version, step)


@login_required
def register(request):
    if not has_role(request.user, ADMIN):
        raise PermissionDenied("only admins register models")
    form = RegisterForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("bundle_zip")
        try:
            row = services.register_bundle(
                source=Path(form.cleaned_data["path"]) if form.cleaned_data.get("path") else None,
                upload=upload.read() if upload is not None else None,
                user=request.user,
                name=form.cleaned_data.get("name", ""),
            )
        except DomainError as exc:
            status = show_error(request, exc, form)
        else:
            messages.success(request, "Registered; a model approver can now review its card.")
            return redirect("models_registry:card", version=row.version)
    elif request.method == "POST":
        status = 400
    return render(request, "models_registry/register.html", {"form": form}, status=status)


@login_required
def history(request):
    if not request.user.has_perm("audit.view_auditevent"):
        raise PermissionDenied("the model history is for compliance reviewers")
    events = (
        filter_events()
        .filter(action__startswith="model.")
        .select_related("actor")
        .order_by("-seq")[:HISTORY_LIMIT]
    )
    return render(request, "models_registry/history.html", {"events": events})
