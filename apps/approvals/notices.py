"""What approvals tell people (apps.notifications): a request to the eligible approvers, with their personal
approve/reject links; a decision or an expiry to the requester."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse

from apps.accounts.models import User
from apps.core.permissions import holders
from apps.notifications.services import notify


def eligible_approvers(deployment, request) -> QuerySet[User]:
    """People who may decide on the request: `approve` on the environment through a team, in the policy's
    teams when it names some, neither the requester nor the release's creator."""
    users = User.objects.filter(is_active=True, groups__in=holders(deployment.environment, "approve"))
    if request.eligible_team_ids:
        users = users.filter(groups__team__pk__in=request.eligible_team_ids)
    excluded = [pk for pk in (deployment.created_by_id, deployment.release.created_by_id) if pk]
    return users.exclude(pk__in=excluded).distinct()


def _data(deployment, **extra) -> dict:
    return {
        "deployment": deployment.pk,
        "environment": deployment.environment.slug,
        "application": deployment.application.slug,
        "version": deployment.release.version,
        "plan_digest": deployment.plan_digest,
        **extra,
    }


def requested(deployment, request) -> None:
    who = deployment.created_by.username if deployment.created_by else "Continuous deployment"
    notify(
        "approval.requested",
        environment=deployment.environment,
        deployment=deployment,
        subject=f"Approve {deployment.application.name} {deployment.release.version} to "
        f"{deployment.environment.name} (#{deployment.pk})",
        body=f"{who} asks to deploy it; {request.required_approvals} approval(s) needed. "
        f"Plan {deployment.plan_digest[:12]}.",
        url=reverse("deployments:detail", args=[deployment.pk]),
        recipients=eligible_approvers(deployment, request),
        data=_data(deployment, required_approvals=request.required_approvals),
    )


def decided(deployment, outcome: str, actor: User | None) -> None:
    """`outcome`: approved, rejected or expired."""
    by = f" by {actor.username}" if actor else ""
    notify(
        "approval.decided",
        environment=deployment.environment,
        deployment=deployment,
        subject=f"Deployment #{deployment.pk} of {deployment.application.name} {deployment.release.version} "
        f"to {deployment.environment.name}: {outcome}{by}",
        body=f"The approval request was {outcome}{by}.",
        url=reverse("deployments:detail", args=[deployment.pk]),
        recipients=[deployment.created_by],
        data=_data(deployment, decision=outcome, by=actor.username if actor else None),
    )
