from drf_spectacular.utils import extend_schema
from rest_framework import views
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.errors import NotFound, ValidationFailed
from apps.core.viewsets import ServiceViewSet
from apps.deployments.api.serializers import DeploymentDetailSerializer
from apps.deployments.selectors import deployments_visible_to
from apps.environments.selectors import environments_visible_to

from .. import services
from ..filters import BookingFilterSet
from ..models import Booking, FreezeWindow
from ..selectors import bookings_visible_to, freezes_visible_to
from .serializers import (
    BookingCreateSerializer,
    BookingDeploySerializer,
    BookingSerializer,
    FreezeCreateSerializer,
    FreezeSerializer,
    ReasonSerializer,
)


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

    @extend_schema(request=BookingDeploySerializer, responses={201: DeploymentDetailSerializer})
    @action(detail=True, methods=["post"], url_path="deploy")
    def deploy(self, request, pk=None):
        """Schedule a deployment (of `release`, default the booking's) at the booking's start; `deploy` on the
        environment. 201 with the deployment."""
        data = self.input_serializer(BookingDeploySerializer, data=request.data)
        booking = self.get_object()
        deployment = services.booking_deploy(actor=request.user, booking=booking, **data.validated_data)
        body = DeploymentDetailSerializer(deployments_visible_to(request.user).defer(None).get(pk=deployment.pk)).data
        return Response(body, status=201)

    @extend_schema(request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an active booking."""
        data = self.input_serializer(ReasonSerializer, data=request.data)
        return self._control(services.booking_cancel, reason=data.validated_data["reason"])


class FreezeViewSet(ServiceViewSet):
    """Freeze windows and locks of environments you may view (and those of every environment). POST needs
    `manage` on each environment named, or the global permission for "all"; DELETE lifts one."""

    queryset = FreezeWindow.objects.none()
    serializer_class = FreezeSerializer
    create_serializer_class = FreezeCreateSerializer
    write_scope = "calendar:write"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return freezes_visible_to(self.request.user)

    def create_object(self, data):
        return services.freeze_create(actor=self.request.user, **FreezeCreateSerializer.service_kwargs(data))

    def delete_object(self, obj):
        services.freeze_remove(actor=self.request.user, window=obj)


class EnvironmentLockView(views.APIView):
    """Lock an environment (a freeze until unlocked: `{reason}`) with POST, unlock it with DELETE; `manage`."""

    write_scope = "calendar:write"

    def _environment(self, slug: str):
        environment = environments_visible_to(self.request.user).filter(slug=slug).first()
        if environment is None:
            raise NotFound("No such environment.")
        return environment

    @extend_schema(request=ReasonSerializer, responses=FreezeSerializer)
    def post(self, request, slug: str):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = services.environment_lock(
            actor=request.user, environment=self._environment(slug), reason=data.validated_data["reason"]
        )
        return Response(FreezeSerializer(window).data, status=201)

    @extend_schema(request=None, responses=FreezeSerializer)
    def delete(self, request, slug: str):
        window = services.environment_unlock(actor=request.user, environment=self._environment(slug))
        return Response(FreezeSerializer(window).data)
