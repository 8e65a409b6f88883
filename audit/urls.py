from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    path("events/<int:seq>/", views.event_detail, name="event"),
    path("jobs/<str:subject>/", views.job_timeline, name="job"),
    path("jobs/<str:subject>/artifacts/<str:sha256>", views.artifact_view, name="artifact"),
    path("verify/", views.verify_view, name="verify"),
    path("export/", views.export_view, name="export"),
    path("public-key", views.public_key, name="public-key"),
]
