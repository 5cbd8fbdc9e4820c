from django.shortcuts import get_object_or_404

from apps.core.viewsets import ServiceViewSet

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


class EnvironmentViewSet(ServiceViewSet):
    """Environments the caller may view, in tier order. Creating one needs the add_environment
    permission; changing one needs `manage` on it."""

    queryset = Environment.objects.none()
    serializer_class = EnvironmentSerializer
    update_serializer_class = EnvironmentUpdateSerializer
    filterset_class = EnvironmentFilterSet
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "tier_position", "created_at"]
    write_scope = CONFIG_SCOPE

    def get_queryset(self):
        return environments_visible_to(self.request.user)

    def create_object(self, data):
        return services.environment_create(actor=self.request.user, **data)

    def update_object(self, environment, data):
        return services.environment_update(actor=self.request.user, environment=environment, **data)

    def delete_object(self, environment):
        services.environment_delete(actor=self.request.user, environment=environment)


class EnvironmentChildViewSet(ServiceViewSet):
    """Targets and variables live under /environments/{environment_slug}/ and share its visibility."""

    write_scope = CONFIG_SCOPE

    def environment(self) -> Environment:
        if not hasattr(self, "_environment"):
            self._environment = get_object_or_404(
                environments_visible_to(self.request.user), slug=self.kwargs["environment_slug"]
            )
        return self._environment


class TargetViewSet(EnvironmentChildViewSet):
    """The targets of one environment."""

    queryset = Target.objects.none()
    serializer_class = TargetSerializer
    ordering_fields = ["name", "created_at"]
    filterset_fields = ["name", "slot"]

    def get_queryset(self):
        return targets_of(self.environment())

    def create_object(self, data):
        return services.target_create(actor=self.request.user, environment=self.environment(), **data)

    def update_object(self, target, data):
        return services.target_update(actor=self.request.user, target=target, **data)

    def delete_object(self, target):
        services.target_delete(actor=self.request.user, target=target)


class VariableViewSet(EnvironmentChildViewSet):
    """The variables of one environment, with per-target overrides. Secret values are never returned."""

    queryset = Variable.objects.none()
    serializer_class = VariableSerializer
    create_serializer_class = VariableCreateSerializer
    update_serializer_class = VariableUpdateSerializer
    ordering_fields = ["name", "created_at"]
    filterset_fields = ["name", "secret"]

    def get_queryset(self):
        return variables_of(self.environment())

    def input_serializer(self, serializer_class, **kwargs):
        if serializer_class is VariableCreateSerializer:
            kwargs["environment"] = self.environment()  # `target` names one of its targets
        return super().input_serializer(serializer_class, **kwargs)

    def create_object(self, data):
        return services.variable_create(actor=self.request.user, environment=self.environment(), **data)

    def update_object(self, variable, data):
        return services.variable_update(actor=self.request.user, variable=variable, **data)

    def delete_object(self, variable):
        services.variable_delete(actor=self.request.user, variable=variable)


class LifecycleViewSet(ServiceViewSet):
    """Lifecycles: ordered stages of environments. Stages list only environments the caller may view.
    Changing lifecycles needs the global lifecycle permissions (staff)."""

    queryset = Lifecycle.objects.none()
    serializer_class = LifecycleSerializer
    update_serializer_class = LifecycleUpdateSerializer
    lookup_field = "slug"
    ordering_fields = ["name", "slug"]
    filterset_fields = ["slug"]
    write_scope = CONFIG_SCOPE

    def get_queryset(self):
        return lifecycles_visible_to(self.request.user)

    def output(self, lifecycle):
        # Re-read with the stages prefetched and filtered to what the caller may view.
        return super().output(self.get_queryset().get(pk=lifecycle.pk))

    def create_object(self, data):
        return services.lifecycle_create(actor=self.request.user, **data)

    def update_object(self, lifecycle, data):
        return services.lifecycle_update(actor=self.request.user, lifecycle=lifecycle, **data)

    def delete_object(self, lifecycle):
        services.lifecycle_delete(actor=self.request.user, lifecycle=lifecycle)
