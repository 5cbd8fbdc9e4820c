from apps.core.viewsets import ServiceViewSet

from .. import services
from ..filters import ReleaseFilterSet
from ..models import Release
from ..selectors import release_reloaded, releases_visible_to
from .serializers import ReleaseCreateSerializer, ReleaseSerializer, ReleaseUpdateSerializer


class ReleaseViewSet(ServiceViewSet):
    """Releases of the applications the caller may view. Creating, changing and deleting one needs `register` on
    its application (and a token with `releases:write`); a release a deployment used never changes."""

    queryset = Release.objects.none()
    serializer_class = ReleaseSerializer
    create_serializer_class = ReleaseCreateSerializer
    update_serializer_class = ReleaseUpdateSerializer
    filterset_class = ReleaseFilterSet
    ordering_fields = ["created_at"]
    write_scope = "releases:write"

    def get_queryset(self):
        return releases_visible_to(self.request.user)

    def output(self, release: Release) -> dict:
        # Read again for `in_use` and the artifacts in order: the services return the bare row.
        return super().output(release_reloaded(release))

    def create_object(self, data):
        return services.release_create(actor=self.request.user, **data)

    def update_object(self, release, data):
        return services.release_update(actor=self.request.user, release=release, **data)

    def delete_object(self, release):
        services.release_delete(actor=self.request.user, release=release)
