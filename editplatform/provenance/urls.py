"""Mounted at /provenance/ (pages) and /api/v1/provenance/ (API), namespace `provenance`."""

from django.urls import path

from editplatform.provenance import api, views

app_name = "provenance"

urlpatterns = [
    path("provenance/check", views.check, name="check"),
    path("provenance/public-check", views.public_check, name="public-check"),
    path("api/v1/provenance/check", api.ProvenanceCheckView.as_view(), name="api-check"),
    path("api/v1/provenance/public-check", api.PublicCheckView.as_view(), name="api-public-check"),
]
