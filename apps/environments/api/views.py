from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.idempotency import idempotent

from .. import services
from ..filters import EnvironmentFilterSet
from ..models import Environment, Lifecycle, Target, Variable
from ..selectors import environments_visible_to, lifecycles_visible_to, targets_of, variables_of
from .serializers import (
    EnvironmentSerializer,
    EnvironmentUpdateSerializer,
    LifecycleSerializer,
    LifecycleUpdateSerializer,
    TargetSerializer,
    VariableCreateSerializer,
    VariableSerializer,
    VariableUpdateSerializer,
)

CONFIG_SCOPE = "config:write"


class EnvironmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Environments the caller may view, in tier order. Creating one needs the add_environment
    permission; changing one needs `manage` on it."""

    queryset = Environment.objects.none()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilterSet
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "tier_position", "created_at"]
    write_scope = CONFIG_SCOPE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return environments_visible_to(self.request.user)

    @idempotent
    def create(self, request, *args, **kwargs):
        data = EnvironmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        environment = services.environment_create(actor=request.user, **data.validated_data)
        return Response(EnvironmentSerializer(environment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EnvironmentUpdateSerializer, responses=EnvironmentSerializer)
    def partial_update(self, request, *args, **kwargs):
        environment = self.get_object()
        data = EnvironmentUpdateSerializer(environment, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        environment = services.environment_update(actor=request.user, environment=environment, **data.validated_data)
        return Response(EnvironmentSerializer(environment).data)

    def destroy(self, request, *args, **kwargs):
        services.environment_delete(actor=request.user, environment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class EnvironmentChildViewSet(viewsets.GenericViewSet):
    """Targets and variables live under /environments/{environment_slug}/ and share its visibility."""

    write_scope = CONFIG_SCOPE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def environment(self) -> Environment:
        if not hasattr(self, "_environment"):
            self._environment = get_object_or_404(
                environments_visible_to(self.request.user), slug=self.kwargs["environment_slug"]
            )
        return self._environment


class TargetViewSet(
    EnvironmentChildViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The targets of one environment."""

    queryset = Target.objects.none()
    serializer_class = TargetSerializer
    ordering_fields = ["name", "created_at"]
    filterset_fields = ["name", "slot"]

    def get_queryset(self):
        return targets_of(self.environment())

    @idempotent
    def create(self, request, *args, **kwargs):
        data = TargetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = services.target_create(actor=request.user, environment=self.environment(), **data.validated_data)
        return Response(TargetSerializer(target).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        target = self.get_object()
        data = TargetSerializer(target, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        target = services.target_update(actor=request.user, target=target, **data.validated_data)
        return Response(TargetSerializer(target).data)

    def destroy(self, request, *args, **kwargs):
        services.target_delete(actor=request.user, target=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VariableViewSet(
    EnvironmentChildViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The variables of one environment, with per-target overrides. Secret values are never returned."""

    queryset = Variable.objects.none()
    serializer_class = VariableSerializer
    ordering_fields = ["name", "created_at"]
    filterset_fields = ["name", "secret"]

    def get_queryset(self):
        return variables_of(self.environment())

    @extend_schema(request=VariableCreateSerializer, responses={201: VariableSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        environment = self.environment()
        data = VariableCreateSerializer(data=request.data, environment=environment)
        data.is_valid(raise_exception=True)
        variable = services.variable_create(actor=request.user, environment=environment, **data.validated_data)
        return Response(VariableSerializer(variable).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VariableUpdateSerializer, responses=VariableSerializer)
    def partial_update(self, request, *args, **kwargs):
        variable = self.get_object()
        data = VariableUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variable = services.variable_update(actor=request.user, variable=variable, **data.validated_data)
        return Response(VariableSerializer(variable).data)

    def destroy(self, request, *args, **kwargs):
        services.variable_delete(actor=request.user, variable=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class LifecycleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Lifecycles: ordered stages of environments. Stages list only environments the caller may view.
    Changing lifecycles needs the global lifecycle permissions (staff)."""

    queryset = Lifecycle.objects.none()
    serializer_class = LifecycleSerializer
    lookup_field = "slug"
    ordering_fields = ["name", "slug"]
    filterset_fields = ["slug"]
    write_scope = CONFIG_SCOPE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return lifecycles_visible_to(self.request.user)

    @idempotent
    def create(self, request, *args, **kwargs):
        data = LifecycleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lifecycle = services.lifecycle_create(actor=request.user, **data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=lifecycle.pk)).data, status=201)

    @extend_schema(request=LifecycleUpdateSerializer, responses=LifecycleSerializer)
    def partial_update(self, request, *args, **kwargs):
        lifecycle = self.get_object()
        data = LifecycleUpdateSerializer(lifecycle, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.lifecycle_update(actor=request.user, lifecycle=lifecycle, **data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=lifecycle.pk)).data)

    def destroy(self, request, *args, **kwargs):
        services.lifecycle_delete(actor=request.user, lifecycle=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
