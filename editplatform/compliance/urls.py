"""Mounted at /audit/jobs/ (the reviewer's audit trail), under the `compliance` namespace."""

from django.urls import path

from editplatform.compliance import views

app_name = "compliance"

urlpatterns = [
    path("<str:subject>/", views.job_timeline, name="job"),
    path("<str:subject>/artifacts/<str:sha256>", views.artifact_view, name="artifact"),
]
