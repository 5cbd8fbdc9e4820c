import django_filters

from .models import Deployment, DeploymentStatus


class DeploymentFilterSet(django_filters.FilterSet):
    """Filters of the deployment lists (API and page); indexes on (environment, created_at),
    (status, created_at) and (release, created_at) serve them."""

    environment = django_filters.CharFilter(field_name="environment__slug", help_text="Environment slug.")
    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")
    status = django_filters.ChoiceFilter(choices=DeploymentStatus.choices)
    release = django_filters.NumberFilter(
        field_name="release_id", min_value=1, max_value=2**63 - 1, help_text="Release id."
    )

    class Meta:
        model = Deployment
        fields = ["environment", "application", "status", "release"]
