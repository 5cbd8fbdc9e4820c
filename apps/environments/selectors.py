from django.db.models import Case, Count, F, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from apps.accounts.models import Team
from apps.core.history import HistoryEntry, history_entries, newest_first
from apps.core.permissions import restrict

from .choices import TIER_ORDER
from .models import Environment, Lifecycle, LifecycleStage, Target, Variable

TIER_RANK = Case(*[When(tier=tier, then=Value(rank)) for tier, rank in TIER_ORDER.items()], output_field=IntegerField())


def environments_visible_to(user, action: str = "view") -> QuerySet[Environment]:
    """Environments the user may view (or perform `action` on), with `tier_position` for tier ordering."""
    qs = Environment.objects.select_related("owner_team").annotate(tier_position=TIER_RANK)
    return restrict(qs, user, action).order_by("tier_position", "name")


def targets_of(environment: Environment) -> QuerySet[Target]:
    """The environment's targets by name (the caller has checked it may view the environment)."""
    return environment.targets.order_by("name")


def variables_of(environment: Environment) -> QuerySet[Variable]:
    """Environment-wide variables first, then each target's overrides (PostgreSQL sorts NULLs last unless told)."""
    return environment.variables.select_related("target").order_by(F("target__name").asc(nulls_first=True), "name")


def lifecycles_visible_to(user) -> QuerySet[Lifecycle]:
    """Every lifecycle, each stage listing only the environments the user may view."""
    stages = LifecycleStage.objects.order_by("position").prefetch_related(
        Prefetch("environments", queryset=environments_visible_to(user))
    )
    return Lifecycle.objects.prefetch_related(Prefetch("stages", queryset=stages)).order_by("name")


def lifecycles_of(environment: Environment) -> QuerySet[Lifecycle]:
    """The lifecycles one of whose stages holds the environment."""
    return Lifecycle.objects.filter(stages__environments=environment).distinct().order_by("name")


# --- Pages: list with counts, lifecycles of one environment, access, history -------------------------


def _count_of(model, **outer_ref) -> Subquery:
    """A correlated COUNT(*) subquery: one per row of the outer query, no join fan-out."""
    rows = model.objects.filter(**{field: OuterRef(ref) for field, ref in outer_ref.items()})
    return Coalesce(
        Subquery(rows.order_by().values(*outer_ref).annotate(n=Count("pk")).values("n")[:1]),
        0,
        output_field=IntegerField(),
    )


def environments_with_counts(user) -> QuerySet[Environment]:
    """Visible environments in tier order, each with `target_count` and `variable_count` (one query)."""
    return environments_visible_to(user).annotate(
        target_count=_count_of(Target, environment="pk"),
        variable_count=_count_of(Variable, environment="pk"),
    )


def lifecycles_including(environment: Environment, user) -> QuerySet[Lifecycle]:
    """The lifecycles one of whose stages holds `environment`, stages listing only what `user` may view."""
    return lifecycles_visible_to(user).filter(pk__in=lifecycles_of(environment).values("pk"))


def environment_history(environment: Environment) -> list[HistoryEntry]:
    """Every history row of the environment, its targets and its variables (also deleted ones), newest first.

    Secret variables' values are never part of an entry. Four queries whatever the rows.
    """
    environment_rows = list(Environment.history.filter(id=environment.pk).select_related("history_user"))
    target_rows = list(Target.history.filter(environment_id=environment.pk).select_related("history_user"))
    variable_rows = list(Variable.history.filter(environment_id=environment.pk).select_related("history_user"))
    target_names = {row.id: row.name for row in sorted(target_rows, key=lambda r: r.history_date)}
    team_ids = {row.owner_team_id for row in environment_rows}
    teams = {team.pk: team.name for team in Team.objects.filter(pk__in=team_ids)} if team_ids else {}

    def shown(field_name, value):
        if field_name == "owner_team":
            return teams.get(value, value)
        if field_name == "target":
            return target_names.get(value, value) if value else "(whole environment)"
        return value

    def variable_label(row) -> str:
        return f"{row.name}@{target_names.get(row.target_id, row.target_id)}" if row.target_id else row.name

    return newest_first(
        [
            *history_entries(environment_rows, subject="environment", label=lambda r: r.name, values=shown),
            *history_entries(
                target_rows, subject="target", label=lambda r: r.name, values=shown, skip=frozenset({"environment"})
            ),
            *history_entries(
                variable_rows,
                subject="variable",
                label=variable_label,
                secret=lambda r: r.secret,
                values=shown,
                skip=frozenset({"environment"}),
            ),
        ]
    )
