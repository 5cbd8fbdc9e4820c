from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, views, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.approvals import services as approvals
from apps.approvals.models import Decision
from apps.core.errors import ValidationFailed
from apps.core.idempotency import idempotent
from apps.core.viewsets import ServiceViewSet
from apps.environments.selectors import environments_visible_to
from apps.policies import services as policies
from apps.policies.models import PolicyOverride
from apps.releases import lifecycle
from apps.releases.selectors import release_for

from .. import services
from ..engine import strategies
from ..filters import DeploymentFilterSet
from ..models import Deployment, DeploymentTemplate, StepRun, Strategy
from ..selectors import deployments_visible_to, step_runs_of, templates_visible_to
from .serializers import (
    CommentSerializer,
    ConfirmOverrideSerializer,
    DecisionInputSerializer,
    DeploymentDetailSerializer,
    DeploymentSerializer,
    DeploymentTemplateSerializer,
    DeploymentTemplateUpdateSerializer,
    DeploymentTemplateWriteSerializer,
    DeployRequestSerializer,
    JustificationSerializer,
    PolicyOverrideInputSerializer,
    PreviewSerializer,
    PromoteSerializer,
    StepLogSerializer,
    StrategySerializer,
    UnblockSerializer,
)


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments of environments and applications the caller may view. Controls need `deploy` on the
    environment; they answer 409 when the deployment's state does not allow them."""

    queryset = Deployment.objects.none()
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilterSet
    ordering_fields = ["created_at", "finished_at"]
    write_scope = "deployments:write"

    def get_queryset(self):
        qs = deployments_visible_to(self.request.user)
        if self.action != "list":
            runs = StepRun.objects.order_by("action", "phase", "step", "target_name").defer("log")
            decisions = Decision.objects.select_related("user").order_by("created_at", "id")
            overrides = PolicyOverride.objects.select_related("requested_by", "confirmed_by")
            qs = (
                qs.defer(None)
                .select_related("approval_request")
                .prefetch_related(
                    Prefetch("step_runs", queryset=runs),
                    Prefetch("approval_request__decisions", queryset=decisions),
                    Prefetch("policy_overrides", queryset=overrides),
                )
            )
        return qs

    def get_serializer_class(self):
        return DeploymentDetailSerializer if self.action != "list" else DeploymentSerializer

    def _control(self, request, service, **kwargs):
        deployment = self.get_object()
        result = service(actor=request.user, deployment=deployment, **kwargs)
        code = status.HTTP_201_CREATED if result.pk != deployment.pk else status.HTTP_200_OK
        return Response(DeploymentDetailSerializer(self.get_queryset().get(pk=result.pk)).data, status=code)

    def _decide(self, request, service):
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = self.get_object()
        service(actor=request.user, deployment=deployment, **data.validated_data)
        return Response(DeploymentDetailSerializer(self.get_queryset().get(pk=deployment.pk)).data)

    @extend_schema(request=DecisionInputSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a deployment waiting for approval. 403 for its requester, the release's creator, or without
        `approve`; 409 if you decided already or it is not waiting."""
        return self._decide(request, approvals.approve)

    @extend_schema(request=DecisionInputSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject a deployment waiting for approval; `comment` is required."""
        return self._decide(request, approvals.reject)

    @extend_schema(request=None, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel now, or after the unit of work in progress."""
        return self._control(request, services.deployment_cancel)

    @extend_schema(request=CommentSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Continue a paused deployment (a manual intervention is done, or an interrupted step may run again)."""
        data = CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control(request, services.deployment_resume, comment=data.validated_data.get("comment", ""))

    @extend_schema(request=None, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run the failed step again and go on."""
        return self._control(request, services.deployment_retry)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(DeploymentDetailSerializer, description="The deployment, now rolling back"),
            201: OpenApiResponse(DeploymentDetailSerializer, description="The rollback deployment"),
        },
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """A running or paused deployment undoes what it did (200; blue/green switches the traffic back). An
        ended one gets a new deployment of the previous successful release (201): after blue/green, one that
        only switches the traffic back when the old slot still holds that release."""
        return self._control(request, services.deployment_rollback)

    @extend_schema(request=JustificationSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"], url_path="override-freeze")
    def override_freeze(self, request, pk=None):
        """Let a deployment that waits for a freeze to end start now (`manage`, a reason; audited)."""
        data = JustificationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control(request, services.deployment_override_freeze, reason=data.validated_data["reason"])

    @extend_schema(request=PolicyOverrideInputSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"], url_path="override-policies")
    def override_policies(self, request, pk=None):
        """Override failed policy rules of a deployment that has not started (`manage`, a justification; audited,
        the owners are told). 400 for a rule that is not overridable or does not apply; a two-person rule waits
        for `confirm-override` by someone else."""
        data = PolicyOverrideInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = self.get_object()
        policies.policy_override(actor=request.user, deployment=deployment, **data.validated_data)
        return Response(DeploymentDetailSerializer(self.get_queryset().get(pk=deployment.pk)).data)

    @extend_schema(request=ConfirmOverrideSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-override")
    def confirm_override(self, request, pk=None):
        """Confirm a two-person override as the second person (`manage`; 403 for the one who asked for it, 409 if
        it is in force already)."""
        data = ConfirmOverrideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = self.get_object()
        override = deployment.policy_overrides.filter(pk=data.validated_data["override"]).first()
        if override is None:
            raise ValidationFailed(fields={"override": ["No such override of this deployment."]})
        policies.policy_override_confirm(actor=request.user, override=override)
        return Response(DeploymentDetailSerializer(self.get_queryset().get(pk=deployment.pk)).data)

    @extend_schema(request=CommentSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """End the current analysis gate, judgment or wait early: the rollout goes on to its next stage."""
        data = CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control(request, services.deployment_promote, comment=data.validated_data.get("comment", ""))

    @extend_schema(responses=StepLogSerializer(many=True))
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        """Every step run with its log (secrets masked)."""
        runs = step_runs_of(self.get_object(), with_logs=True)
        return Response(StepLogSerializer(runs, many=True).data)


class StrategyListView(views.APIView):
    """The deployment strategies and the JSON Schema of each one's `strategy_options`."""

    @extend_schema(responses=StrategySerializer(many=True))
    def get(self, request):
        return Response(
            [
                {"name": name, "title": Strategy(name).label, "description": schema["title"], "options": schema}
                for name, schema in strategies.SCHEMAS.items()
            ]
        )


def _environment(user, slug: str):
    """The environment `slug` if the user may view it; unknown and invisible look the same (400)."""
    environment = environments_visible_to(user).filter(slug=slug).first()
    if environment is None:
        raise ValidationFailed(fields={"environment": [f"Unknown environment {slug!r}."]})
    return environment


class ReleaseDeployView(views.APIView):
    """POST /api/v1/releases/{id}/deploy/: request a deployment of the release to an environment."""

    write_scope = "deployments:write"

    @extend_schema(
        request=DeployRequestSerializer,
        responses={201: OpenApiResponse(DeploymentDetailSerializer, description="The deployment")},
    )
    @idempotent
    def post(self, request, pk):
        release = release_for(request.user, pk)
        data = DeployRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        environment = _environment(request.user, values.pop("environment"))
        deployment = services.deployment_create(actor=request.user, release=release, environment=environment, **values)
        deployment = deployments_visible_to(request.user).defer(None).get(pk=deployment.pk)
        return Response(DeploymentDetailSerializer(deployment).data, status=status.HTTP_201_CREATED)


class ReleasePreviewView(views.APIView):
    """GET /api/v1/releases/{id}/preview/?environment=<slug>[&strategy=&template=]: what deploying the release
    there would change and what would hold it, before anyone presses Deploy. Nothing is created."""

    @extend_schema(
        parameters=[
            OpenApiParameter("environment", str, required=True),
            OpenApiParameter("strategy", str),
            OpenApiParameter("template", str),
        ],
        responses=PreviewSerializer,
    )
    def get(self, request, pk):
        release = release_for(request.user, pk)
        slug = request.query_params.get("environment")
        if not slug:
            raise ValidationFailed(fields={"environment": ["Name the environment: ?environment=<slug>."]})
        environment = _environment(request.user, slug)
        template = None
        if request.query_params.get("template"):
            template = DeploymentTemplate.objects.filter(slug=request.query_params["template"]).first()
            if template is None:
                raise ValidationFailed(fields={"template": ["No such template."]})
        preview = services.promotion_preview(
            actor=request.user,
            release=release,
            environment=environment,
            strategy=request.query_params.get("strategy") or None,
            template=template,
        )
        return Response(preview)


class ReleasePromoteView(views.APIView):
    """POST /api/v1/releases/{id}/promote/: deploy the release to every environment of its next lifecycle
    stage. 422 when the previous stage has not succeeded or the release is blocked there."""

    write_scope = "deployments:write"

    @extend_schema(
        request=PromoteSerializer,
        responses={201: OpenApiResponse(DeploymentSerializer(many=True), description="The deployments")},
    )
    @idempotent
    def post(self, request, pk):
        release = release_for(request.user, pk)
        data = PromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = lifecycle.promote(actor=request.user, release=release, **data.validated_data)
        return Response(DeploymentSerializer(made, many=True).data, status=status.HTTP_201_CREATED)


class ReleaseUnblockView(views.APIView):
    """POST /api/v1/releases/{id}/unblock/: lift the release's block in an environment (`manage` on it)."""

    write_scope = "deployments:write"

    @extend_schema(request=UnblockSerializer, responses={204: None})
    def post(self, request, pk):
        release = release_for(request.user, pk)
        data = UnblockSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slug = data.validated_data["environment"]
        environment = environments_visible_to(request.user).filter(slug=slug).first()
        if environment is None:
            raise ValidationFailed(fields={"environment": [f"Unknown environment {slug!r}."]})
        lifecycle.unblock(
            actor=request.user, release=release, environment=environment, reason=data.validated_data["reason"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeploymentTemplateViewSet(ServiceViewSet):
    """Deployment templates. Every change of the steps makes a new version; deployments keep theirs."""

    queryset = DeploymentTemplate.objects.none()
    serializer_class = DeploymentTemplateSerializer
    create_serializer_class = DeploymentTemplateWriteSerializer
    update_serializer_class = DeploymentTemplateUpdateSerializer
    lookup_field = "slug"
    write_scope = "config:write"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return templates_visible_to(self.request.user)

    def output(self, obj):
        return self.get_serializer(self.get_queryset().get(pk=obj.pk)).data

    def create_object(self, data):
        return services.template_create(actor=self.request.user, **data)

    def update_object(self, template, data):
        return services.template_update(actor=self.request.user, template=template, **data)
