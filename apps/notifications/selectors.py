"""Reads of subscriptions and deliveries: a person sees their own; staff also see the teams' (and every delivery)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Delivery, Subscription


def subscriptions_visible_to(user) -> QuerySet[Subscription]:
    """The user's own subscriptions, and for staff every team's, oldest first."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Subscription.objects.none()
    mine = Q(owner=user)
    if user.is_staff:
        mine |= Q(team__isnull=False)
    return Subscription.objects.filter(mine).select_related("owner", "team", "environment").order_by("id")


def deliveries_visible_to(user) -> QuerySet[Delivery]:
    """Deliveries addressed to the user or made for their subscriptions; staff see every delivery. Newest first."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Delivery.objects.none()
    deliveries = Delivery.objects.select_related("subscription", "user").order_by("-created_at", "-id")
    if user.is_staff:
        return deliveries
    return deliveries.filter(Q(user=user) | Q(subscription__owner=user))


def recent_deliveries_for(user, limit: int = 20) -> list[Delivery]:
    """What the notifications page lists: the user's own latest deliveries (staff too: only theirs)."""
    return list(
        Delivery.objects.filter(Q(user=user) | Q(subscription__owner=user))
        .select_related("subscription")
        .order_by("-created_at", "-id")[:limit]
    )
