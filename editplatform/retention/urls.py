"""Mounted at /retention/ (reviewers), under the `retention` namespace."""

from django.urls import path

from editplatform.retention import views

app_name = "retention"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("run", views.run_now, name="run"),
    path("holds", views.place_hold, name="place-hold"),
    path("holds/<int:pk>/request-lift", views.request_lift, name="request-lift"),
    path("holds/<int:pk>/confirm-lift", views.confirm_lift, name="confirm-lift"),
    path("requests", views.record_request, name="record-request"),
    path("requests/<int:pk>/approve", views.approve_request, name="approve-request"),
    path("requests/<int:pk>/certificate", views.certificate, name="certificate"),
]
