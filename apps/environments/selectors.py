from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When

from apps.core.permissions import restrict

from .choices import TIER_ORDER
from .models import Environment, Lifecycle, LifecycleStage, Target, Variable

TIER_RANK = Case(*[When(tier=tier, then=Value(rank)) for tier, rank in TIER_ORDER.items()], output_field=IntegerField())


def environments_visible_to(user, action: str = "view") -> QuerySet[Environment]:
    """Environments the user may view (or perform `action` on), with `tier_position` for tier ordering."""
    qs = Environment.objects.select_related("owner_team").annotate(tier_position=TIER_RANK)
    return restrict(qs, user, action).order_by("tier_position", "name")


def targets_of(environment: Environment) -> QuerySet[Target]:
    return environment.targets.order_by("name")


def variables_of(environment: Environment) -> QuerySet[Variable]:
    """Environment-wide variables first, then each target's overrides."""
    return environment.variables.select_related("target").order_by("target__name", "name")


def lifecycles_visible_to(user) -> QuerySet[Lifecycle]:
    """Every lifecycle, each stage listing only the environments the user may view."""
    stages = LifecycleStage.objects.order_by("position").prefetch_related(
        Prefetch("environments", queryset=environments_visible_to(user))
    )
    return Lifecycle.objects.prefetch_related(Prefetch("stages", queryset=stages)).order_by("name")


def lifecycles_of(environment: Environment) -> QuerySet[Lifecycle]:
    return Lifecycle.objects.filter(stages__environments=environment).distinct().order_by("name")
