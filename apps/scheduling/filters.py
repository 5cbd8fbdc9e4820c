import django_filters

from apps.core.filters import IsoDateTimeFilter

from .models import Booking, BookingStatus


class BookingFilterSet(django_filters.FilterSet):
    """`start`/`end` select the bookings that overlap that range (what a calendar view shows)."""

    environment = django_filters.CharFilter(field_name="environment__slug")
    team = django_filters.CharFilter(field_name="team__slug")
    status = django_filters.MultipleChoiceFilter(choices=BookingStatus.choices)
    start = IsoDateTimeFilter(field_name="ends_at", lookup_expr="gt", label="Overlapping from")
    end = IsoDateTimeFilter(field_name="starts_at", lookup_expr="lt", label="Overlapping until")

    class Meta:
        model = Booking
        fields = ["environment", "team", "status", "start", "end"]
