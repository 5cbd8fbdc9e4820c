from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    DeploymentTemplateViewSet,
    DeploymentViewSet,
    ReleaseDeployView,
    ReleasePreviewView,
    ReleasePromoteView,
    ReleaseUnblockView,
    StrategyListView,
)

router = SimpleRouter()
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("deployment-templates", DeploymentTemplateViewSet, basename="deploymenttemplate")
urlpatterns = [
    path("releases/<int:pk>/deploy/", ReleaseDeployView.as_view(), name="release-deploy"),
    path("releases/<int:pk>/promote/", ReleasePromoteView.as_view(), name="release-promote"),
    path("releases/<int:pk>/preview/", ReleasePreviewView.as_view(), name="release-preview"),
    path("releases/<int:pk>/unblock/", ReleaseUnblockView.as_view(), name="release-unblock"),
    path("deployment-strategies/", StrategyListView.as_view(), name="deployment-strategies"),
    *router.urls,
]
