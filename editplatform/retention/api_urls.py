"""Mounted at /api/v1/retention/ (reviewers, session + second factor; no API-key scope)."""

from django.urls import path

from editplatform.retention import api

app_name = "retention-api"

urlpatterns = [
    path("holds", api.HoldListView.as_view(), name="holds"),
    path("holds/<int:pk>", api.HoldDetailView.as_view(), name="hold"),
    path("holds/<int:pk>/request-lift", api.HoldRequestLiftView.as_view(), name="request-lift"),
    path("holds/<int:pk>/confirm-lift", api.HoldConfirmLiftView.as_view(), name="confirm-lift"),
    path("requests", api.RequestListView.as_view(), name="requests"),
    path("photo-lookup", api.PhotoLookupView.as_view(), name="photo-lookup"),
    path("requests/<int:pk>", api.RequestDetailView.as_view(), name="request"),
    path("requests/<int:pk>/approve", api.RequestApproveView.as_view(), name="approve"),
    path(
        "requests/<int:pk>/certificate",
        api.RequestCertificateView.as_view(),
        name="certificate",
    ),
]
