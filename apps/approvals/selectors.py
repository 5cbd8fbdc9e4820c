"""Reads of approval requests: who waits for whom, permission-filtered, with what the pages show in one query.

A request is visible to whoever may view its deployment (its environment and its application).
`waiting_for(user)` spells out in SQL the rules services.why_not_eligible() checks for one request,
so an inbox, a dashboard card and the navigation badge each cost one query, whatever the rows.
"""

from __future__ import annotations

from django.db.models import (
    BooleanField,
    Count,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from apps.accounts.models import Team
from apps.catalog.models import Application
from apps.core.permissions import restrict
from apps.deployments.models import Deployment, DeploymentStatus
from apps.environments.models import Environment

from .models import ApprovalPolicy, ApprovalRequest, Decision, RequestStatus, Verdict


class JSONArrayHoldsAny(Func):
    """True when the JSON array in `field` holds one of the ids `ids` (a queryset of one column) selects.

    Django's JSON lookups have no "any element in" that works on both databases, so this writes it for
    each: `json_each` on SQLite (its JSON1 functions, which JSONField needs anyway), and
    `jsonb_array_elements_text` on PostgreSQL. An EXISTS over the row's own array: no join, no GROUP BY.
    """

    output_field = BooleanField()

    def __init__(self, field: str, ids: QuerySet) -> None:
        super().__init__(F(field), Subquery(ids))

    def _parts(self, compiler, connection):
        array, array_params = compiler.compile(self.source_expressions[0])
        ids, ids_params = compiler.compile(self.source_expressions[1])
        return array, ids, (*array_params, *ids_params)

    def as_sql(self, compiler, connection, **extra_context):  # SQLite
        array, ids, params = self._parts(compiler, connection)
        # `array` and `ids` are SQL Django compiled (a column, a subquery); the values travel in `params`.
        return f"EXISTS (SELECT 1 FROM json_each({array}) AS member WHERE member.value IN {ids})", params  # noqa: S608

    def as_postgresql(self, compiler, connection, **extra_context):
        array, ids, params = self._parts(compiler, connection)
        sql = (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements_text({array}) AS member(id) WHERE member.id::bigint IN {ids})"  # noqa: S608
        )
        return sql, params


def _approvals_count() -> Coalesce:
    approvals = (
        Decision.objects.filter(request=OuterRef("pk"), verdict=Verdict.APPROVE)
        .order_by()
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(approvals, output_field=IntegerField()), Value(0))


def _listed(requests: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    """What a row of a list shows: the deployment with its application, release, environment and requester,
    and `approvals` (how many approved so far). The plan stays in the database."""
    return (
        requests.select_related(
            "environment",
            "deployment__application",
            "deployment__release",
            "deployment__created_by",
        )
        .defer("deployment__plan")
        .annotate(approvals=_approvals_count())
    )


def _most_urgent_first(requests: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    return requests.order_by(F("expires_at").asc(nulls_last=True), "created_at", "id")


def requests_visible_to(user) -> QuerySet[ApprovalRequest]:
    """Requests of the deployments the user may view: of environments and applications they may view."""
    return ApprovalRequest.objects.filter(
        environment__in=restrict(Environment.objects.all(), user),
        deployment__application__in=restrict(Application.objects.all(), user),
    )


def pending_visible_to(user) -> QuerySet[ApprovalRequest]:
    """Every visible request still waiting for people, the one expiring first first."""
    return _most_urgent_first(_listed(requests_visible_to(user).filter(status=RequestStatus.PENDING)))


def waiting_for(user) -> QuerySet[ApprovalRequest]:
    """The pending requests this user may decide on and has not: services.why_not_eligible() in one query.

    They hold `approve` on the environment; they belong to one of the request's eligible teams (when it
    names any); they neither requested the deployment nor created its release; they have not decided.
    The one expiring first comes first.
    """
    if user is None or not user.is_authenticated:
        return ApprovalRequest.objects.none()
    my_teams = Team.objects.filter(group__user=user).order_by().values("pk")
    requests = (
        requests_visible_to(user)
        .filter(
            status=RequestStatus.PENDING,
            deployment__status=DeploymentStatus.PENDING_APPROVAL,
            environment__in=restrict(Environment.objects.all(), user, "approve"),
        )
        .filter(Q(eligible_team_ids=[]) | Q(JSONArrayHoldsAny("eligible_team_ids", my_teams)))
        .exclude(deployment__created_by=user)
        .exclude(deployment__release__created_by=user)
        .exclude(decisions__user=user)
    )
    return _most_urgent_first(_listed(requests))


def decided_by(user) -> QuerySet[ApprovalRequest]:
    """Visible requests the user decided on, the latest decision first, each with `my_verdict`, `my_comment`
    and `my_decided_at`."""
    if user is None or not user.is_authenticated:
        return ApprovalRequest.objects.none()
    mine = Decision.objects.filter(request=OuterRef("pk"), user=user)
    requests = (
        requests_visible_to(user)
        .filter(decisions__user=user)
        .annotate(
            my_verdict=Subquery(mine.values("verdict")[:1]),
            my_comment=Subquery(mine.values("comment")[:1]),
            my_decided_at=Subquery(mine.values("created_at")[:1]),
        )
    )
    return _listed(requests).order_by("-my_decided_at", "-id")


def request_for(deployment: Deployment) -> ApprovalRequest | None:
    """The deployment's approval request with its decisions (oldest first) and their people, or None.
    Two queries."""
    decisions = Decision.objects.select_related("user").order_by("created_at", "id")
    return (
        ApprovalRequest.objects.filter(deployment_id=deployment.pk)
        .prefetch_related(Prefetch("decisions", queryset=decisions))
        .first()
    )


def policy_of(environment: Environment) -> ApprovalPolicy | None:
    """The environment's approval policy with its eligible teams, or None. Two queries."""
    return (
        ApprovalPolicy.objects.filter(environment=environment)
        .prefetch_related(Prefetch("eligible_teams", queryset=Team.objects.order_by("name")))
        .first()
    )


def policy_summary(environment: Environment) -> dict | None:
    """The environment's approval policy as plain data (previews, comparisons), or None without one."""
    policy = policy_of(environment)
    if policy is None:
        return None
    return {
        "required_approvals": policy.required_approvals,
        "eligible_teams": sorted(team.slug for team in policy.eligible_teams.all()),
        "expires_after_hours": round(policy.expires_after.total_seconds() / 3600, 2) if policy.expires_after else None,
        "rejection_rejects": policy.rejection_rejects,
    }
