"""Reads of policy sets: those that apply to environments the user may view (or to tiers, or to all)."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to

from .models import PolicySet, Rule


def policy_sets_visible_to(user) -> QuerySet[PolicySet]:
    """Policy sets of all environments or of tiers, and those attached to an environment the user may view;
    with their rules and environments (three queries)."""
    visible = environments_visible_to(user).values("pk")
    return (
        PolicySet.objects.filter(Q(all_environments=True) | ~Q(tiers=[]) | Q(environments__in=visible))
        .distinct()
        .prefetch_related(
            Prefetch("rules", queryset=Rule.objects.order_by("position")),
            Prefetch("environments", queryset=Environment.objects.order_by("slug")),
        )
        .order_by("name")
    )
