from rest_framework.routers import SimpleRouter

from .views import ApprovalPolicyViewSet

router = SimpleRouter()
router.register("approval-policies", ApprovalPolicyViewSet, basename="approvalpolicy")
urlpatterns = router.urls
