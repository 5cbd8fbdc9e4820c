from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import views
from rest_framework.response import Response

from apps.catalog.selectors import artifacts_visible_to
from apps.core.errors import NotFound, ValidationFailed
from apps.environments.selectors import environments_visible_to

from .. import services
from ..compare import compare_environments, markdown_report
from ..selectors import visible_installations
from .serializers import (
    CompareSerializer,
    DriftReadingSerializer,
    InstallationSerializer,
    ObservationSerializer,
    TargetReportSerializer,
)


def visible_environment(user, slug: str, field: str | None = None):
    """The environment if the user may view it; else a 404 (or a 400 naming `field` for a query parameter)."""
    environment = environments_visible_to(user).filter(slug=slug).first() if slug and "\x00" not in slug else None
    if environment is None:
        if field:
            raise ValidationFailed(fields={field: [f"No such environment: {slug!r}." if slug else "Required."]})
        raise NotFound("No such environment.")
    return environment


class ArtifactLocationsView(views.APIView):
    """Every environment and target the artifact runs on now (those you may view), since when, by which
    deployment."""

    @extend_schema(responses=InstallationSerializer(many=True))
    def get(self, request, pk: int):
        if not artifacts_visible_to(request.user).filter(pk=pk).exists():
            raise NotFound("No such artifact.")
        rows = visible_installations(request.user, artifact_id=pk).order_by("environment__name", "target__name")
        return Response(InstallationSerializer(rows, many=True).data)


class EnvironmentInventoryView(views.APIView):
    """What runs in the environment now: per application and target, the version, since when, the deployment
    and who requested it."""

    @extend_schema(responses=InstallationSerializer(many=True))
    def get(self, request, slug: str):
        environment = visible_environment(request.user, slug)
        rows = visible_installations(request.user, environment=environment).order_by(
            "application__slug", "target__name"
        )
        return Response(InstallationSerializer(rows, many=True).data)


class EnvironmentCompareView(views.APIView):
    """How two environments differ: deployed versions (with the builds between them), variables (secrets
    compared by a keyed hash, never revealed), targets, settings, default templates, approval policies and
    freezes. `format=md` answers the same as a Markdown report."""

    @extend_schema(
        parameters=[
            OpenApiParameter("left", str, required=True, description="Slug of one environment."),
            OpenApiParameter("right", str, required=True, description="Slug of the other."),
            OpenApiParameter("format", str, enum=["json", "md"], description="md: a Markdown report to download."),
        ],
        responses={200: CompareSerializer, (200, "text/markdown"): OpenApiTypes.STR},
    )
    def get(self, request):
        left = visible_environment(request.user, request.query_params.get("left", ""), "left")
        right = visible_environment(request.user, request.query_params.get("right", ""), "right")
        comparison = compare_environments(request.user, left, right)
        if request.query_params.get("format") == "md":
            return markdown_response(comparison)
        return Response(comparison)


def markdown_response(comparison: dict) -> HttpResponse:
    name = f"compare-{comparison['left']['slug']}-{comparison['right']['slug']}.md"
    response = HttpResponse(markdown_report(comparison), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class TargetReportView(views.APIView):
    """A target (or its agent) says what it runs: `{application, version}` or `{application, digest}`. The reading
    is compared with the installation record; `drifted` says whether they differ. Needs `deploy` on the
    environment; tokens need the `inventory:write` scope."""

    write_scope = "inventory:write"

    @extend_schema(request=TargetReportSerializer, responses=ObservationSerializer)
    def post(self, request, slug: str, name: str):
        environment = visible_environment(request.user, slug)
        target = environment.targets.filter(name=name).first()
        if target is None:
            raise NotFound("No such target.")
        data = TargetReportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        observation = services.target_report(
            actor=request.user, environment=environment, target=target, **data.validated_data
        )
        return Response(ObservationSerializer(observation).data)


class DriftCheckView(views.APIView):
    """Read every target's health check URL now and compare what each says (and what targets reported) with
    the installation records. Needs `deploy` on the environment; tokens need `inventory:write`."""

    write_scope = "inventory:write"

    @extend_schema(request=None, responses=DriftReadingSerializer(many=True))
    def post(self, request, slug: str):
        environment = visible_environment(request.user, slug)
        readings = services.drift_check(actor=request.user, environment=environment)
        return Response(DriftReadingSerializer(readings, many=True).data)
