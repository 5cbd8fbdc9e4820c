from drf_spectacular.utils import extend_schema
from rest_framework import views
from rest_framework.response import Response

from apps.catalog.selectors import applications_visible_to, artifacts_visible_to
from apps.core.errors import NotFound
from apps.environments.selectors import environments_visible_to

from ..selectors import current_installations
from .serializers import InstallationSerializer


def _visible(user, **filters):
    """Current installations in environments and of applications the user may view, with what is shown."""
    return current_installations(
        environment__in=environments_visible_to(user).values("pk"),
        application__in=applications_visible_to(user).values("pk"),
        **filters,
    ).select_related("environment", "deployment__created_by")


class ArtifactLocationsView(views.APIView):
    """Every environment and target the artifact runs on now (those you may view), since when, by which
    deployment."""

    @extend_schema(responses=InstallationSerializer(many=True))
    def get(self, request, pk: int):
        if not artifacts_visible_to(request.user).filter(pk=pk).exists():
            raise NotFound("No such artifact.")
        rows = _visible(request.user, artifact_id=pk).order_by("environment__name", "target__name")
        return Response(InstallationSerializer(rows, many=True).data)


class EnvironmentInventoryView(views.APIView):
    """What runs in the environment now: per application and target, the version, since when, the deployment
    and who requested it."""

    @extend_schema(responses=InstallationSerializer(many=True))
    def get(self, request, slug: str):
        environment = environments_visible_to(request.user).filter(slug=slug).first()
        if environment is None:
            raise NotFound("No such environment.")
        rows = _visible(request.user, environment=environment).order_by("application__slug", "target__name")
        return Response(InstallationSerializer(rows, many=True).data)
