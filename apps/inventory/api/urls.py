from django.urls import path

from .views import ArtifactLocationsView, EnvironmentInventoryView

urlpatterns = [
    path("artifacts/<int:pk>/locations/", ArtifactLocationsView.as_view(), name="artifact-locations"),
    path("environments/<slug:slug>/inventory/", EnvironmentInventoryView.as_view(), name="environment-inventory"),
]
