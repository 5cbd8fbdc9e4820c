from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts.models import ApiToken
from apps.core.errors import ValidationFailed
from apps.core.idempotency import idempotent
from apps.core.viewsets import ServiceViewSet

from .. import services
from ..filters import ApplicationFilterSet, ArtifactFilterSet, CdTriggerFilterSet
from ..models import Application, Artifact, CdTrigger
from ..selectors import applications_visible_to, artifacts_visible_to
from .serializers import (
    ApplicationSerializer,
    ApplicationUpdateSerializer,
    ArtifactRegisterSerializer,
    ArtifactSerializer,
    CdTriggerSerializer,
    CdTriggerUpdateSerializer,
)


class ApplicationViewSet(ServiceViewSet):
    """Applications the caller may view. Creating one needs add_application; changing one, `manage` on it."""

    queryset = Application.objects.none()
    serializer_class = ApplicationSerializer
    update_serializer_class = ApplicationUpdateSerializer
    filterset_class = ApplicationFilterSet
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "created_at"]
    write_scope = "config:write"

    def get_queryset(self):
        return applications_visible_to(self.request.user)

    def create_object(self, data):
        return services.application_create(actor=self.request.user, **data)

    def update_object(self, application, data):
        return services.application_update(actor=self.request.user, application=application, **data)

    def delete_object(self, application):
        services.application_delete(actor=self.request.user, application=application)


class ArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Build artifacts. CI registers them with POST (idempotent); they never change afterwards."""

    queryset = Artifact.objects.none()
    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilterSet
    ordering_fields = ["registered_at", "version_key"]
    write_scope = "artifacts:write"

    def get_queryset(self):
        return artifacts_visible_to(self.request.user)

    @extend_schema(
        request=ArtifactRegisterSerializer,
        responses={
            201: OpenApiResponse(ArtifactSerializer, description="Registered"),
            200: OpenApiResponse(ArtifactSerializer, description="Registered before: the stored record"),
        },
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        data = ArtifactRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        artifact, created = services.artifact_register(actor=request.user, token=token, **data.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ArtifactSerializer(artifact).data, status=code)


class CdTriggerViewSet(ServiceViewSet):
    """Continuous-deployment triggers of the applications you may view (`?application=<slug>`); writes need
    `manage` on the application. The first active trigger whose glob matches a new build's branch wins."""

    queryset = CdTrigger.objects.none()
    serializer_class = CdTriggerSerializer
    update_serializer_class = CdTriggerUpdateSerializer
    filterset_class = CdTriggerFilterSet
    write_scope = "config:write"

    def get_queryset(self):
        qs = CdTrigger.objects.filter(application__in=applications_visible_to(self.request.user))
        return qs.select_related("application", "lifecycle").order_by("application__slug", "position", "id")

    def create_object(self, data):
        application = data.pop("application")
        if not applications_visible_to(self.request.user).filter(pk=application.pk).exists():
            raise ValidationFailed(fields={"application": [f"Unknown application {application.slug!r}."]})
        return services.trigger_create(actor=self.request.user, application=application, **data)

    def update_object(self, trigger, data):
        return services.trigger_update(actor=self.request.user, trigger=trigger, **data)

    def delete_object(self, trigger):
        services.trigger_delete(actor=self.request.user, trigger=trigger)
