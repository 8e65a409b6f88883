"""The admin role's pages: people, roles, keys, 2FA resets and recoveries — nothing more.

Django's stock user page offers "Superuser status" and raw per-user permissions; an
admin ticked superuser on their own account and read the audit tables. Here the user
page has neither field, offers only role groups, hides superuser accounts, and resets
the second factor through `reset_two_factor` (audited, four-eyes recovery). The TOTP
device page shows no key, QR code or config URL: a secret is shown only to the
enrolling user, once.
"""

from __future__ import annotations

import ipaddress

import django.contrib.auth.admin  # noqa: F401 - registers the stock admins we replace
import django_otp.plugins.otp_totp.admin  # noqa: F401
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework_api_key.admin import APIKeyModelAdmin

from editplatform.accounts.forms import IntegrationKeyAdminForm, RoleGroupsMixin
from editplatform.accounts.models import SCOPES, AccountRecovery, IntegrationKey
from editplatform.accounts.recovery import (
    RecoveryError,
    confirm_recovery,
    issue_enrolment_code,
    reset_two_factor,
)
from editplatform.accounts.services import AccountError, create_api_key, revoke_api_key

User = get_user_model()


class GovernedUserChangeForm(RoleGroupsMixin, UserChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._limit_groups()


class GovernedUserCreationForm(RoleGroupsMixin, AdminUserCreationForm):
    pass


for model in (User, TOTPDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class GovernedUserAdmin(UserAdmin):
    form = GovernedUserChangeForm
    add_form = GovernedUserCreationForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_staff", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")
    filter_horizontal = ("groups",)
    list_display = ("username", "email", "is_active", "is_staff", "roles")
    list_filter = ("is_active", "is_staff", "groups")
    actions = ["reset_second_factor", "issue_enrolment_code"]

    def get_queryset(self, request):
        # Superusers exist only by the operator's audited command; admins cannot touch them.
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(is_superuser=False)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        return form

    @admin.display(description="roles")
    def roles(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "-"

    @admin.action(description="Reset second factor (the user re-enrols; a second admin confirms)",
                  permissions=["change"])
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot reset your own second factor.", level=messages.ERROR)
                continue
            removed = reset_two_factor(user, by=request.user)
            self.message_user(request, f"{user.username}: {removed} device(s) removed; privileged roles are "
                                       "suspended until a second admin confirms and the user re-enrols.")

    @admin.action(description="Issue a one-time 2FA enrolment code", permissions=["change"])
    def issue_enrolment_code(self, request, queryset):
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot issue an enrolment code for yourself.", level=messages.ERROR)
                continue
            code = issue_enrolment_code(user, by=request.user)
            self.message_user(request, f"Enrolment code for {user.username}: {code} — hand it to them in person; "
                                       "it is shown once and works once.", level=messages.WARNING)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(admin.ModelAdmin):
    """Which accounts have a device; never its key. Deleting = a 2FA reset."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    search_fields = ("user__username",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        reset_two_factor(obj.user, by=request.user)

    def delete_queryset(self, request, queryset):
        for user in User.objects.filter(pk__in=queryset.values("user_id")):
            reset_two_factor(user, by=request.user)


@admin.register(AccountRecovery)
class AccountRecoveryAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "requested_by", "requested_at", "confirmed_by", "re_enrolled_at", "completed_at")
    list_filter = ("kind",)
    fields = list_display
    readonly_fields = list_display
    actions = ["confirm"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Confirm recovery (second administrator)", permissions=["change"])
    def confirm(self, request, queryset):
        for recovery in queryset:
            try:
                confirm_recovery(recovery, by=request.user)
            except RecoveryError as exc:
                self.message_user(request, f"{recovery}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{recovery.user}: recovery confirmed.")


SCOPE_HELP = {
    "jobs:write": "submit and cancel jobs",
    "jobs:read": "read jobs and download their results",
    "audit:read": "read the audit log and its proofs",
}


def parse_networks(text: str) -> list[str]:
    """One IP network per line (or comma-separated) -> their canonical forms.

    An entry that is not a network is refused by name, so the admin sees which one.
    """
    entries = [part.strip() for line in (text or "").splitlines() for part in line.split(",")]
    networks = []
    for entry in filter(None, entries):
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise forms.ValidationError(
                f"{entry!r} is not an IP address or network (e.g. 203.0.113.7 or 10.0.0.0/8)") from None
    return networks


class IntegrationKeyForm(IntegrationKeyAdminForm):
    """Scopes as checkboxes and the allow-list as text, instead of raw JSON boxes."""

    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} — {SCOPE_HELP.get(scope, '')}") for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    allowed_networks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "203.0.113.0/24\n2001:db8::/32"}),
        help_text="One IP address or network per line; empty: any address.",
    )

    def clean_allowed_networks(self):
        return parse_networks(self.cleaned_data.get("allowed_networks") or "")


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(APIKeyModelAdmin):
    form = IntegrationKeyForm
    list_display = ("prefix", "name", "service_account", "scopes", "created", "expiry_date", "last_used_at", "_has_expired", "revoked")
    list_filter = ("revoked", "created")
    search_fields = ("name", "prefix", "service_account__username")
    fields = ("name", "service_account", "scopes", "allowed_networks", "jobs_per_hour", "expiry_date", "revoked", "prefix", "last_used_at", "created_by")

    def get_readonly_fields(self, request, obj=None):
        readonly = ["prefix", "last_used_at", "created_by"]
        if obj is not None:
            readonly += ["name", "service_account", "scopes", "allowed_networks", "jobs_per_hour", "expiry_date"]
            if obj.revoked:
                readonly.append("revoked")
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            try:
                key, raw = create_api_key(
                    obj.service_account, name=obj.name, scopes=obj.scopes, expires_at=obj.expiry_date,
                    allowed_networks=obj.allowed_networks, jobs_per_hour=obj.jobs_per_hour, created_by=request.user,
                )
            except AccountError as exc:  # the form checked everything create_api_key checks
                raise AssertionError(f"unvalidated API key form: {exc}") from exc
            obj.pk = key.pk
            self.message_user(
                request, f"The API key for {obj.name} is: {raw} — copy it now; it is stored only as a hash.",
                level=messages.WARNING,
            )
            return
        if obj.revoked and "revoked" in form.changed_data:
            revoke_api_key(obj, by=request.user, reason="revoked in the admin")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's history stays provable


# Roles are code (accounts.roles): no group page to edit their permissions on.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)
