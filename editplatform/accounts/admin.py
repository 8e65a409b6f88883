"""Admin for integration keys: created by an admin, shown once, revocable, audited."""

from __future__ import annotations

from django.contrib import admin, messages
from rest_framework_api_key.admin import APIKeyModelAdmin

from editplatform.accounts.models import IntegrationKey
from editplatform.accounts.services import AccountError, create_api_key, revoke_api_key


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(APIKeyModelAdmin):
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
            except AccountError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
                return
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
