"""Reads of the calendar: what the user may view, filtered by environment, team, status and time range."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.environments.selectors import environments_visible_to

from .models import Booking


def bookings_visible_to(user) -> QuerySet[Booking]:
    """Bookings of environments the user may view, in time order, with what lists show (one query)."""
    return (
        Booking.objects.filter(environment__in=environments_visible_to(user).values("pk"))
        .select_related("environment", "team", "requested_by", "release__application", "decided_by")
        .order_by("starts_at", "id")
    )
