from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.core.viewsets import ServiceViewSet
from apps.environments.selectors import environments_visible_to

from .. import services
from ..filters import BookingFilterSet
from ..models import Booking
from ..selectors import bookings_visible_to
from .serializers import BookingCreateSerializer, BookingSerializer, ReasonSerializer


class BookingViewSet(ServiceViewSet):
    """Bookings of deployment slots in environments you may view. POST needs `book` on the environment and
    answers 409 naming the booking it overlaps; approve and decline need to be in the environment's owner
    team or `manage` on it."""

    queryset = Booking.objects.none()
    serializer_class = BookingSerializer
    create_serializer_class = BookingCreateSerializer
    filterset_class = BookingFilterSet
    ordering_fields = ["starts_at", "created_at"]
    write_scope = "calendar:write"
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        return bookings_visible_to(self.request.user)

    def create_object(self, data):
        environment = data.pop("environment")
        if not environments_visible_to(self.request.user).filter(pk=environment.pk).exists():
            raise ValidationFailed(fields={"environment": ["No such environment."]})
        return services.booking_request(actor=self.request.user, environment=environment, **data)

    def _control(self, service, **kwargs):
        booking = service(actor=self.request.user, booking=self.get_object(), **kwargs)
        return Response(self.output(self.get_queryset().get(pk=booking.pk)))

    @extend_schema(request=None, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a requested booking."""
        return self._control(services.booking_approve)

    @extend_schema(request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        """Decline a requested booking; `reason` is required."""
        data = self.input_serializer(ReasonSerializer, data=request.data)
        return self._control(services.booking_decline, reason=data.validated_data["reason"])

    @extend_schema(request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an active booking."""
        data = self.input_serializer(ReasonSerializer, data=request.data)
        return self._control(services.booking_cancel, reason=data.validated_data["reason"])
