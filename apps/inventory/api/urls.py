from django.urls import path

from .views import (
    ArtifactLocationsView,
    DriftCheckView,
    EnvironmentCompareView,
    EnvironmentInventoryView,
    TargetReportView,
)

urlpatterns = [
    path("artifacts/<int:pk>/locations/", ArtifactLocationsView.as_view(), name="artifact-locations"),
    path("environments/compare/", EnvironmentCompareView.as_view(), name="environment-compare"),
    path("environments/<slug:slug>/inventory/", EnvironmentInventoryView.as_view(), name="environment-inventory"),
    path("environments/<slug:slug>/drift-check/", DriftCheckView.as_view(), name="environment-drift-check"),
    path(
        "environments/<slug:slug>/targets/<str:name>/report/",
        TargetReportView.as_view(),
        name="environment-target-report",
    ),
]
