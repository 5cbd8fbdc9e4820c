import django_filters
from django.db.models import Q

from apps.core.filters import LabelFilter

from .choices import Tier
from .models import Environment


class EnvironmentFilterSet(django_filters.FilterSet):
    """Filters of the environments page and API."""

    tier = django_filters.ChoiceFilter(choices=Tier.choices)
    owner_team = django_filters.CharFilter(field_name="owner_team__slug", help_text="Slug of the owner team.")
    label = LabelFilter()
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the name or slug.")

    class Meta:
        model = Environment
        fields = ["tier", "owner_team", "label", "requires_booking", "protected"]

    def filter_search(self, qs, name, value):
        return qs.filter(Q(name__icontains=value) | Q(slug__icontains=value)) if value else qs
