from drf_spectacular.utils import extend_schema
from rest_framework import views
from rest_framework.response import Response

from apps.core.viewsets import ServiceViewSet

from .. import services
from ..models import PolicySet
from ..selectors import policy_sets_visible_to
from .serializers import (
    EvaluateSerializer,
    EvaluationSerializer,
    PolicySetCreateSerializer,
    PolicySetSerializer,
    PolicySetUpdateSerializer,
)


class PolicySetViewSet(ServiceViewSet):
    """Policy sets of environments you may view, of tiers and of all environments. POST, PATCH and DELETE need the
    global `add_policyset`, `change_policyset` or `delete_policyset` permission and `manage` on each environment the
    set is attached to (before and after a change)."""

    queryset = PolicySet.objects.none()
    serializer_class = PolicySetSerializer
    create_serializer_class = PolicySetCreateSerializer
    update_serializer_class = PolicySetUpdateSerializer
    lookup_field = "slug"
    write_scope = "config:write"

    def get_queryset(self):
        return policy_sets_visible_to(self.request.user)

    def input_serializer(self, serializer_class, **kwargs):
        return super().input_serializer(serializer_class, context={"request": self.request}, **kwargs)

    def output(self, policy_set):
        # Re-read with the rules and environments prefetched.
        return super().output(self.get_queryset().get(pk=policy_set.pk))

    def create_object(self, data):
        return services.policy_set_create(actor=self.request.user, **data)

    def update_object(self, policy_set, data):
        return services.policy_set_update(actor=self.request.user, policy_set=policy_set, **data)

    def delete_object(self, policy_set):
        services.policy_set_delete(actor=self.request.user, policy_set=policy_set)


class EvaluateView(views.APIView):
    """Dry run: check a release against the policies of an environment (or one policy set) without deploying."""

    write_scope = "read"

    @extend_schema(request=EvaluateSerializer, responses=EvaluationSerializer)
    def post(self, request):
        data = EvaluateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        chosen = values["policy_set"]
        environment = values["environment"]
        results = services.evaluate(
            release=values["release"],
            environment=environment,
            strategy=values["strategy"] or environment.default_strategy or "all_at_once",
            requester=request.user,
            at=values["at"],
            change_ticket=values["change_ticket"],
            policy_sets=[chosen] if chosen is not None else None,
        )
        return Response({"passed": all(r.passed for r in results), "results": services.as_data(results)})
