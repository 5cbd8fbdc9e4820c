from rest_framework.routers import SimpleRouter

from .views import ReleaseViewSet

router = SimpleRouter()
router.register("releases", ReleaseViewSet, basename="release")
urlpatterns = router.urls
