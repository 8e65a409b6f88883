from django.urls import path

from editplatform.models_registry import poc_views, views

app_name = "models_registry"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("register", views.register, name="register"),
    path("history", views.history, name="history"),
    # proofs of concept (admins); before "<str:version>/", which would take "poc/"
    path("poc/", poc_views.poc_list, name="poc_list"),
    path("poc/<uuid:run_id>/", poc_views.poc_detail, name="poc_detail"),
    path("poc/<uuid:run_id>/status", poc_views.poc_status, name="poc_status"),
    path("poc/<uuid:run_id>/report", poc_views.poc_report, name="poc_report"),
    path("poc/<uuid:run_id>/report.json", poc_views.poc_report_json, name="poc_report_json"),
    path("<str:version>/", views.card, name="card"),
    path("<str:version>/approve", views.approve, name="approve"),
    path("<str:version>/activate", views.activate, name="activate"),
    path("<str:version>/retire", views.retire, name="retire"),
]
