from rest_framework import mixins, viewsets

from apps.core.errors import ValidationFailed
from apps.core.viewsets import ServiceViewSet
from apps.environments.selectors import environments_visible_to

from .. import services
from ..filters import DeliveryFilterSet
from ..models import Delivery, Subscription
from ..selectors import deliveries_visible_to, subscriptions_visible_to
from .serializers import (
    DeliverySerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
    SubscriptionUpdateSerializer,
)


class SubscriptionViewSet(ServiceViewSet):
    """Your notification subscriptions (staff: also every team's). Someone else's is a 404. The webhook
    secret and the apprise URL are write-only."""

    queryset = Subscription.objects.none()
    serializer_class = SubscriptionSerializer
    create_serializer_class = SubscriptionCreateSerializer
    update_serializer_class = SubscriptionUpdateSerializer
    filterset_fields = ["channel", "active"]
    ordering_fields = ["id", "created_at"]
    write_scope = "config:write"

    def get_queryset(self):
        return subscriptions_visible_to(self.request.user)

    def _environment(self, data: dict) -> None:
        """`environment` slug -> an environment the caller may view; any other is unknown (400)."""
        if "environment" not in data:
            return
        slug = data["environment"]
        if slug is None:
            return
        environment = environments_visible_to(self.request.user).filter(slug=slug).first()
        if environment is None:
            raise ValidationFailed(fields={"environment": ["Unknown environment."]})
        data["environment"] = environment

    def create_object(self, data):
        data = dict(data)
        self._environment(data)
        return services.subscription_create(actor=self.request.user, **data)

    def update_object(self, subscription, data):
        data = dict(data)
        self._environment(data)
        return services.subscription_update(actor=self.request.user, subscription=subscription, **data)

    def delete_object(self, subscription):
        services.subscription_delete(actor=self.request.user, subscription=subscription)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages sent for your subscriptions or to you, newest first, with every attempt (staff: all of them)."""

    queryset = Delivery.objects.none()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return deliveries_visible_to(self.request.user).prefetch_related("attempt_log")
