"""Reads of policy sets: those that apply to environments the user may view (or to tiers, or to all), what the
editor offers to attach them to, and their history."""

from __future__ import annotations

from django.apps import apps
from django.db.models import Prefetch, Q, QuerySet

from apps.core.history import HistoryEntry, history_entries, newest_first
from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to

from .models import PolicySet, Rule
from .rules import params_text, title_of, value_text


def policy_sets_visible_to(user) -> QuerySet[PolicySet]:
    """Policy sets of all environments or of tiers, and those attached to an environment the user may view;
    with their rules and the environments they are attached to that the user may view (three queries)."""
    visible = environments_visible_to(user)
    return (
        PolicySet.objects.filter(Q(all_environments=True) | ~Q(tiers=[]) | Q(environments__in=visible.values("pk")))
        .distinct()
        .prefetch_related(
            Prefetch("rules", queryset=Rule.objects.order_by("position")),
            Prefetch("environments", queryset=visible.order_by("slug")),
        )
        .order_by("name")
    )


def environments_to_attach(user, policy_set: PolicySet | None = None) -> QuerySet[Environment]:
    """The environments the editor offers: those the user manages, and those the set is attached to already (so
    saving the form keeps them; the service decides whether the user may change the set at all)."""
    attached = policy_set.environments.values("pk") if policy_set is not None else []
    managed = environments_visible_to(user, "manage").values("pk")
    return Environment.objects.filter(Q(pk__in=managed) | Q(pk__in=attached)).order_by("name")


def policy_set_history(policy_set: PolicySet, user) -> list[HistoryEntry]:
    """Every history row of the policy set and of its rules (also deleted ones), newest first; environments by
    slug (those the user may not view, or deleted, as "hidden"), parameters as text. Four queries whatever the
    rows."""
    set_rows = list(PolicySet.history.filter(id=policy_set.pk).select_related("history_user"))
    rule_rows = list(Rule.history.filter(policy_set_id=policy_set.pk).select_related("history_user"))
    links = list(
        apps.get_model("policies", "HistoricalPolicySet_environments")
        .objects.filter(history__id=policy_set.pk)
        .values_list("history_id", "environment_id")
    )
    slugs = dict(
        environments_visible_to(user).filter(pk__in={pk for _, pk in links}).order_by().values_list("pk", "slug")
    )
    attached: dict[int, list[str]] = {}
    for history_id, environment_id in links:
        attached.setdefault(history_id, []).append(slugs.get(environment_id, "hidden"))

    def shown(field_name, value):
        if field_name == "params":
            return params_text(value)
        if isinstance(value, list):
            return value_text(sorted(value))
        return value_text(value) if isinstance(value, bool) else value

    return newest_first(
        [
            *history_entries(
                set_rows,
                subject="policy set",
                label=lambda r: r.name,
                values=shown,
                m2m={"environments": attached},
            ),
            *history_entries(
                rule_rows,
                subject="rule",
                label=lambda r: f"#{r.position + 1} {title_of(r.kind)}",
                values=shown,
                skip=frozenset({"policy_set", "position"}),
            ),
        ]
    )
