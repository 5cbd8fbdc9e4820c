from rest_framework.routers import SimpleRouter

from .views import DeliveryViewSet, SubscriptionViewSet

router = SimpleRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("deliveries", DeliveryViewSet, basename="delivery")
urlpatterns = router.urls
