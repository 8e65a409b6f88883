"""The admin page of retention policies (per artifact kind, optionally per purpose)."""

from django.contrib import admin

from editplatform.retention.models import RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("kind", "purpose_contains", "days", "updated_at")
    list_filter = ("kind",)
    search_fields = ("purpose_contains",)
