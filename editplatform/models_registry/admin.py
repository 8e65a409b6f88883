"""A read-only admin view of model versions: look, never change.

A version's state moves only through the four-eyes services (approve by a model
approver, activate by a second person, retire), each an audit event bound to the bundle
hash. An admin form would write ``state``, ``approved_by`` or ``path`` past those rules
without a trace, so nothing can be added, changed or deleted here, superusers included.
"""

from __future__ import annotations

from django.contrib import admin

from editplatform.models_registry.models import ModelVersion

FIELDS = (
    "version",
    "name",
    "purpose",
    "state",
    "parent_version",
    "source",
    "path",
    "registered_by",
    "registered_at",
    "approved_by",
    "approved_at",
    "approved_sha256",
    "approval_comment",
    "activated_by",
    "activated_at",
    "retired_at",
    "card",
)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "purpose", "state", "registered_at", "activated_at")
    list_filter = ("state", "purpose")
    search_fields = ("=version", "name")
    fields = FIELDS
    readonly_fields = FIELDS

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}
