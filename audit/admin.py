"""Read-only admin views of the audit tables (nothing can be added, changed or deleted)."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEvent, Checkpoint


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor_name", "action", "subject", "request_id")
    list_filter = ("action",)
    search_fields = ("=subject", "=actor_name", "=request_id")
    readonly_fields = (
        "seq",
        "created_at",
        "actor_name",
        "action",
        "subject",
        "request_id",
        "entry",
        "leaf_hex",
    )
    fields = readonly_fields
    show_full_result_count = False


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("size", "created_at")
    readonly_fields = ("size", "created_at", "note")
    fields = readonly_fields
