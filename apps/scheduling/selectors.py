"""Reads of the calendar: what the user may view, filtered by environment, team, status and time range."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to

from .models import Booking, FreezeWindow


def bookings_visible_to(user) -> QuerySet[Booking]:
    """Bookings of environments the user may view, in time order, with what lists show (one query)."""
    return (
        Booking.objects.filter(environment__in=environments_visible_to(user).values("pk"))
        .select_related("environment", "team", "requested_by", "release__application", "decided_by")
        .order_by("starts_at", "id")
    )


def freezes_visible_to(user) -> QuerySet[FreezeWindow]:
    """Active freeze windows of every environment, or of one the user may view; their environments prefetched."""
    visible = environments_visible_to(user)
    return (
        FreezeWindow.objects.filter(Q(all_environments=True) | Q(environments__in=visible.values("pk")), active=True)
        .distinct()
        .select_related("created_by")
        .prefetch_related(Prefetch("environments", queryset=Environment.objects.order_by("slug")))
        .order_by("starts_at", "id")
    )
