"""Mounted at /audit/jobs/ (the reviewer's audit trail), under the `compliance` namespace."""

from django.urls import path

from editplatform.compliance import views

app_name = "compliance"

urlpatterns = [
    # The subject travels in the query string (`?subject=`), so any string has a page
    # (audit.subjects); the path form stays for links written before, and cannot carry '/'.
    path("", views.job_timeline, name="job"),
    path("<str:subject>/", views.job_timeline, name="job-at"),
    path("<str:subject>/artifacts/<str:sha256>", views.artifact_view, name="artifact"),
]
