from rest_framework.routers import SimpleRouter

from .views import ApplicationViewSet, ArtifactViewSet

router = SimpleRouter()
router.register("applications", ApplicationViewSet, basename="application")
router.register("artifacts", ArtifactViewSet, basename="artifact")
urlpatterns = router.urls
