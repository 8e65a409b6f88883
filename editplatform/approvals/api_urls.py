from django.urls import path

from editplatform.approvals import api

app_name = "approvals-api"

urlpatterns = [
    path("jobs/<uuid:job_id>/approve", api.ApproveView.as_view(), name="approve"),
    path("jobs/<uuid:job_id>/reject", api.RejectView.as_view(), name="reject"),
]
