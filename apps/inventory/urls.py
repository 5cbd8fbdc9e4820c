from django.urls import path

from . import views

app_name = "inventory"
urlpatterns = [
    path("inventory/", views.search, name="search"),
    path("inventory/compare/", views.compare, name="compare"),
    path("environments/<slug:slug>/inventory/", views.environment_inventory, name="environment"),
    path("environments/<slug:slug>/inventory/check/", views.environment_drift_check, name="drift-check"),
    path("environments/<slug:slug>/targets/<int:pk>/", views.target_history, name="target"),
]
