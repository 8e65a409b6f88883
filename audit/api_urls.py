"""/api/v1/audit/: the audit log's REST API (see audit.api)."""

from django.urls import path

from audit import api

app_name = "audit-api"

urlpatterns = [
    path("events", api.EventListView.as_view(), name="events"),
    path("events/<int:seq>", api.EventDetailView.as_view(), name="event"),
    path("checkpoint", api.CheckpointView.as_view(), name="checkpoint"),
    path("consistency", api.ConsistencyView.as_view(), name="consistency"),
]
