from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import DeploymentTemplateViewSet, DeploymentViewSet, ReleaseDeployView

router = SimpleRouter()
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("deployment-templates", DeploymentTemplateViewSet, basename="deploymenttemplate")
urlpatterns = [
    path("releases/<int:pk>/deploy/", ReleaseDeployView.as_view(), name="release-deploy"),
    *router.urls,
]
