from rest_framework.routers import SimpleRouter

from .views import EnvironmentViewSet, LifecycleViewSet, TargetViewSet, VariableViewSet

ENVIRONMENT = r"environments/(?P<environment_slug>[-a-zA-Z0-9_]+)"

router = SimpleRouter()
router.register("environments", EnvironmentViewSet, basename="environment")
router.register(f"{ENVIRONMENT}/targets", TargetViewSet, basename="environment-target")
router.register(f"{ENVIRONMENT}/variables", VariableViewSet, basename="environment-variable")
router.register("lifecycles", LifecycleViewSet, basename="lifecycle")
urlpatterns = router.urls
