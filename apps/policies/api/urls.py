from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import EvaluateView, PolicySetViewSet

router = SimpleRouter()
router.register("policy-sets", PolicySetViewSet, basename="policy-set")
urlpatterns = [
    path("policies/evaluate/", EvaluateView.as_view(), name="policies-evaluate"),
    *router.urls,
]
