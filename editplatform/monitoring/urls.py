from django.urls import path

from editplatform.monitoring import views

urlpatterns = [path("metrics", views.metrics, name="metrics")]
