import django_filters

from .models import Release


class ReleaseFilterSet(django_filters.FilterSet):
    """Filters of the release lists (API and page). The index on (application, created_at) serves them."""

    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")
    version = django_filters.CharFilter(help_text="Exact version.")

    class Meta:
        model = Release
        fields = ["application", "version"]
