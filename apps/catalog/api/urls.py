from rest_framework.routers import SimpleRouter

from .views import ApplicationViewSet, ArtifactViewSet, CdTriggerViewSet

router = SimpleRouter()
router.register("applications", ApplicationViewSet, basename="application")
router.register("artifacts", ArtifactViewSet, basename="artifact")
router.register("cd-triggers", CdTriggerViewSet, basename="cdtrigger")
urlpatterns = router.urls
