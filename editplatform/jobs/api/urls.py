from django.urls import path

from editplatform.jobs.api import views

app_name = "jobs-api"

urlpatterns = [
    path("jobs", views.JobListCreateView.as_view(), name="list"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="detail"),
    path("jobs/<uuid:job_id>/cancel", views.JobCancelView.as_view(), name="cancel"),
    path(
        "jobs/<uuid:job_id>/artifacts/<str:kind>", views.JobArtifactView.as_view(), name="artifact"
    ),
    path("edits", views.EditCatalogView.as_view(), name="edits"),
]
