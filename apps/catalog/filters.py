import django_filters
from django.db.models import Q

from apps.core.filters import LabelFilter

from .models import Application, Artifact, CdTrigger


class ApplicationFilterSet(django_filters.FilterSet):
    owner_team = django_filters.CharFilter(field_name="owner_team__slug", help_text="Slug of the owner team.")
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the name or slug.")

    class Meta:
        model = Application
        fields = ["owner_team", "search"]

    def filter_search(self, qs, name, value):
        return qs.filter(Q(name__icontains=value) | Q(slug__icontains=value)) if value else qs


class ArtifactFilterSet(django_filters.FilterSet):
    """Filters of the artifact lists (API and application page).

    Indexes on (application, branch, version) and on digest serve them.
    """

    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")
    version = django_filters.CharFilter()
    branch = django_filters.CharFilter()
    digest = django_filters.CharFilter()
    label = LabelFilter()

    class Meta:
        model = Artifact
        fields = ["application", "version", "branch", "digest", "label"]


class CdTriggerFilterSet(django_filters.FilterSet):
    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")

    class Meta:
        model = CdTrigger
        fields = ["application"]
