from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.environments.selectors import environments_visible_to

from .. import services
from ..models import ApprovalPolicy
from .serializers import ApprovalPolicySerializer


class ApprovalPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Approval policies of the environments you may view, addressed by environment slug. PUT creates or
    replaces one, DELETE removes it: both need `manage` on the environment."""

    queryset = ApprovalPolicy.objects.none()
    serializer_class = ApprovalPolicySerializer
    lookup_field = "environment__slug"
    lookup_url_kwarg = "environment"
    write_scope = "config:write"
    http_method_names = ["get", "put", "delete", "head", "options"]

    def get_queryset(self):
        return (
            ApprovalPolicy.objects.filter(environment__in=environments_visible_to(self.request.user))
            .select_related("environment")
            .prefetch_related("eligible_teams")
            .order_by("environment__name")
        )

    def _environment(self):
        slug = self.kwargs["environment"]
        environment = environments_visible_to(self.request.user).filter(slug=slug).first()
        if environment is None:
            raise NotFound("No such environment.")
        return environment

    @extend_schema(request=ApprovalPolicySerializer, responses=ApprovalPolicySerializer)
    def update(self, request, *args, **kwargs):
        environment = self._environment()
        data = ApprovalPolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.policy_set(actor=request.user, environment=environment, **data.service_kwargs())
        return Response(self.get_serializer(self.get_queryset().get(environment=environment)).data)

    def destroy(self, request, *args, **kwargs):
        services.policy_remove(actor=request.user, environment=self._environment())
        return Response(status=status.HTTP_204_NO_CONTENT)
