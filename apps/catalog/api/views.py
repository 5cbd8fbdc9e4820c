from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts.models import ApiToken
from apps.core.idempotency import idempotent

from .. import services
from ..filters import ApplicationFilterSet, ArtifactFilterSet
from ..models import Application, Artifact
from ..selectors import applications_visible_to, artifacts_visible_to
from .serializers import (
    ApplicationSerializer,
    ApplicationUpdateSerializer,
    ArtifactRegisterSerializer,
    ArtifactSerializer,
)


class ApplicationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Applications the caller may view. Creating one needs add_application; changing one, `manage` on it."""

    queryset = Application.objects.none()
    serializer_class = ApplicationSerializer
    filterset_class = ApplicationFilterSet
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "created_at"]
    write_scope = "config:write"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return applications_visible_to(self.request.user)

    @idempotent
    def create(self, request, *args, **kwargs):
        data = ApplicationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        application = services.application_create(actor=request.user, **data.validated_data)
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ApplicationUpdateSerializer, responses=ApplicationSerializer)
    def partial_update(self, request, *args, **kwargs):
        application = self.get_object()
        data = ApplicationUpdateSerializer(application, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        application = services.application_update(actor=request.user, application=application, **data.validated_data)
        return Response(ApplicationSerializer(application).data)

    def destroy(self, request, *args, **kwargs):
        services.application_delete(actor=request.user, application=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArtifactViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
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
            200: OpenApiResponse(
                ArtifactSerializer, description="This build was registered already; the stored record"
            ),
        },
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        data = ArtifactRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        artifact, created = services.artifact_register(actor=request.user, token=token, **data.validated_data)
        return Response(
            ArtifactSerializer(artifact).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
