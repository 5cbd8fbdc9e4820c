import django_filters

from apps.core.context import Channel
from apps.core.filters import IsoDateTimeFilter

from .models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    """Filters of the audit log page and API; each one is served by an index of AuditEvent."""

    actor = django_filters.CharFilter(field_name="actor_name", help_text="Username of the actor, or `system`.")
    verb = django_filters.CharFilter(help_text="e.g. `token.created`.")
    object_type = django_filters.CharFilter(help_text="e.g. `accounts.apitoken`.")
    object_id = django_filters.CharFilter()
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    since = IsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive.")
    until = IsoDateTimeFilter(field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive.")

    class Meta:
        model = AuditEvent
        fields = ["actor", "verb", "object_type", "object_id", "channel", "since", "until"]
