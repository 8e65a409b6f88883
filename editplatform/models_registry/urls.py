from django.urls import path

from editplatform.models_registry import views

app_name = "models_registry"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("register", views.register, name="register"),
    path("history", views.history, name="history"),
    path("<str:version>/", views.card, name="card"),
    path("<str:version>/approve", views.approve, name="approve"),
    path("<str:version>/activate", views.activate, name="activate"),
    path("<str:version>/retire", views.retire, name="retire"),
]
