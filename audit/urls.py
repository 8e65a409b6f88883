"""/audit/: the audit-trail browser (pages about jobs: editplatform.compliance)."""

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    path("events/<int:seq>/", views.event_detail, name="event"),
    path("verify/", views.verify_view, name="verify"),
    path("export/", views.export_view, name="export"),
    path("public-key", views.public_key, name="public-key"),
]
