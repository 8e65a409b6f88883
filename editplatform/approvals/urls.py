from django.urls import path

from editplatform.approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<uuid:job_id>/", views.review, name="review"),
    path("<uuid:job_id>/decide", views.decide, name="decide"),
]
