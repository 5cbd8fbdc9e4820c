from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import BookingViewSet, EnvironmentLockView, FreezeViewSet

router = SimpleRouter()
router.register("bookings", BookingViewSet, basename="booking")
router.register("freezes", FreezeViewSet, basename="freeze")
urlpatterns = [
    path("environments/<slug:slug>/lock/", EnvironmentLockView.as_view(), name="environment-lock"),
    *router.urls,
]
