"""Approval policies and the decisions of people on deployments waiting for them. Each audits itself.

Rules that always hold (DESIGN.md §4): approvals count distinct people; the release's creator
and the deployment's requester (for CD, the CI token's user) never approve it; a decision is
bound to the plan digest it was made on; requests and decisions are taken under a row lock, so
concurrent approvals never lose one.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.audit.services import audit_record
from apps.core.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import can, ensure_can
from apps.deployments import services as deployments
from apps.deployments.models import Deployment, DeploymentStatus
from apps.environments.models import Environment

from . import notices
from .models import ApprovalPolicy, ApprovalRequest, Decision, RequestStatus, Verdict

MAX_APPROVALS = 10
MAX_EXPIRY = timedelta(days=30)
COMMENT_MAX = 2000


# --- Policies ------------------------------------------------------------------------------------------


def policy_set(
    *,
    actor: User | None,
    environment: Environment,
    required_approvals: int = 1,
    eligible_teams: list[Team] | tuple = (),
    expires_after: timedelta | None = None,
    rejection_rejects: bool = True,
) -> ApprovalPolicy:
    """Create or replace the environment's approval policy (`manage` on it). Deployments requested
    from now on need it; pending requests keep the rules they were opened with."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    errors: dict[str, list[str]] = {}
    if isinstance(required_approvals, bool) or not isinstance(required_approvals, int):
        errors["required_approvals"] = ["A whole number."]
    elif not 1 <= required_approvals <= MAX_APPROVALS:
        errors["required_approvals"] = [f"From 1 to {MAX_APPROVALS}."]
    if expires_after is not None and not timedelta(minutes=1) <= expires_after <= MAX_EXPIRY:
        errors["expires_after"] = ["From one minute to 30 days, or none."]
    if errors:
        raise ValidationFailed(fields=errors)
    with transaction.atomic():
        policy, created = ApprovalPolicy.objects.select_for_update().get_or_create(
            environment=environment,
            defaults={
                "required_approvals": required_approvals,
                "expires_after": expires_after,
                "rejection_rejects": rejection_rejects,
            },
        )
        if not created:
            policy.required_approvals = required_approvals
            policy.expires_after = expires_after
            policy.rejection_rejects = rejection_rejects
            policy.save()
        policy.eligible_teams.set(eligible_teams)
        audit_record(
            verb="approval_policy.set",
            target=policy,
            actor=actor,
            summary=f"Approval policy of {environment.slug}",
            details={
                "environment": environment.slug,
                "required_approvals": required_approvals,
                "eligible_teams": sorted(team.slug for team in eligible_teams),
                "expires_after_seconds": expires_after.total_seconds() if expires_after else None,
                "rejection_rejects": rejection_rejects,
            },
        )
    return policy


def policy_remove(*, actor: User | None, environment: Environment) -> None:
    """Deployments to the environment no longer need approval (pending requests stay as they are)."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.filter(environment=environment).first()
        if policy is None:
            raise NotFound(f"{environment.name} has no approval policy.")
        audit_record(
            verb="approval_policy.removed", target=policy, actor=actor, details={"environment": environment.slug}
        )
        policy.delete()


# --- Requests ------------------------------------------------------------------------------------------


def request_open(deployment: Deployment) -> ApprovalRequest | None:
    """In deployment_create's transaction: a request bound to the deployment's plan when its environment
    has a policy (the deployment then waits as pending_approval); None otherwise."""
    policy = ApprovalPolicy.objects.filter(environment_id=deployment.environment_id).first()
    if policy is None:
        return None
    now = timezone.now()
    request = ApprovalRequest.objects.create(
        deployment=deployment,
        environment_id=deployment.environment_id,
        plan_digest=deployment.plan_digest,
        required_approvals=policy.required_approvals,
        rejection_rejects=policy.rejection_rejects,
        eligible_team_ids=sorted(policy.eligible_teams.values_list("pk", flat=True)),
        expires_at=now + policy.expires_after if policy.expires_after else None,
    )
    audit_record(
        verb="approval.requested",
        target=deployment,
        summary=f"{deployment} needs {policy.required_approvals} approval(s)",
        details={"plan_digest": deployment.plan_digest, "required": policy.required_approvals},
    )
    notices.requested(deployment, request)
    return request


def why_not_eligible(user: User, deployment: Deployment, request: ApprovalRequest) -> str | None:
    """Why `user` may not decide on this request, or None when they may (the rules, not the state)."""
    if not can(user, "approve", deployment.environment):
        return f"You may not approve deployments to {deployment.environment.name}."
    if request.eligible_team_ids and not user.groups.filter(team__pk__in=request.eligible_team_ids).exists():
        names = ", ".join(
            Team.objects.filter(pk__in=request.eligible_team_ids).order_by("name").values_list("name", flat=True)
        )
        return f"Only members of {names} may approve deployments to {deployment.environment.name}."
    if deployment.created_by_id == user.pk:
        return "You requested this deployment: someone else must approve it."
    if deployment.release.created_by_id == user.pk:
        return "You created this release: someone else must approve its deployment."
    return None


def _decide(*, actor: User, deployment: Deployment, verdict: str, comment: str, plan_digest: str | None):
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX:
        raise ValidationFailed(fields={"comment": [f"Text of at most {COMMENT_MAX} characters."]})
    if verdict == Verdict.REJECT and not comment.strip():
        raise ValidationFailed("Say why you reject it.", fields={"comment": ["A rejection needs a comment."]})
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update()
            .select_related("deployment__environment", "deployment__release")
            .filter(deployment_id=deployment.pk)
            .first()
        )
        if request is None:
            raise InvalidTransition(f"{deployment} does not wait for approval.")
        deployment = request.deployment
        ensure_can(actor, "view", deployment.environment)
        reason = why_not_eligible(actor, deployment, request)
        if reason:
            raise PermissionDenied(reason)
        if request.status != RequestStatus.PENDING or deployment.status != DeploymentStatus.PENDING_APPROVAL:
            raise InvalidTransition(
                f"{deployment} is not waiting for approval ({request.get_status_display().lower()})."
            )
        if plan_digest and plan_digest != request.plan_digest:
            raise Conflict("The plan you saw is not this deployment's plan; reload it and decide again.")
        try:
            with transaction.atomic():
                Decision.objects.create(
                    request=request,
                    user=actor,
                    verdict=verdict,
                    comment=comment.strip(),
                    plan_digest=request.plan_digest,
                )
        except IntegrityError:
            raise Conflict("You have decided on this deployment already; one person counts once.") from None
        audit_record(
            verb=f"approval.{'approved' if verdict == Verdict.APPROVE else 'rejected'}",
            target=deployment,
            actor=actor,
            details={"plan_digest": request.plan_digest, "comment": comment.strip()},
        )
        _settle(request, deployment, actor)
    return request


def _settle(request: ApprovalRequest, deployment: Deployment, actor: User | None) -> None:
    """Move the deployment on once enough people approved, or stop it on a rejection that rejects."""
    decisions = list(request.decisions.values_list("verdict", flat=True))
    now = timezone.now()
    if request.rejection_rejects and Verdict.REJECT in decisions:
        request.status, request.decided_at = RequestStatus.REJECTED, now
        request.save(update_fields=["status", "decided_at", "updated_at"])
        deployments.transition(deployment, DeploymentStatus.REJECTED, reason="Rejected by an approver.", actor=actor)
        notices.decided(deployment, "rejected", actor)
    elif decisions.count(Verdict.APPROVE) >= request.required_approvals:
        request.status, request.decided_at = RequestStatus.APPROVED, now
        request.save(update_fields=["status", "decided_at", "updated_at"])
        deployments.release_approved(deployment, actor=actor)
        notices.decided(deployment, "approved", actor)


def approve(
    *, actor: User, deployment: Deployment, comment: str = "", plan_digest: str | None = None
) -> ApprovalRequest:
    """Approve a pending deployment. Raises NotFound, PermissionDenied (no `approve`, not eligible, the
    requester or the release's creator), InvalidTransition (not pending), Conflict (decided already, or
    `plan_digest` is not this plan's)."""
    return _decide(
        actor=actor, deployment=deployment, verdict=Verdict.APPROVE, comment=comment, plan_digest=plan_digest
    )


def reject(*, actor: User, deployment: Deployment, comment: str, plan_digest: str | None = None) -> ApprovalRequest:
    """Reject a pending deployment (a comment is required); the same errors as approve()."""
    return _decide(actor=actor, deployment=deployment, verdict=Verdict.REJECT, comment=comment, plan_digest=plan_digest)


def expire_due() -> int:
    """Beat: reject the deployments whose approval requests expired unanswered. Returns how many."""
    expired = 0
    now = timezone.now()
    due = ApprovalRequest.objects.filter(status=RequestStatus.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            request = (
                ApprovalRequest.objects.select_for_update(skip_locked=True)
                .select_related("deployment__environment", "deployment__release")
                .filter(pk=pk, status=RequestStatus.PENDING)
                .first()
            )
            if request is None:
                continue
            request.status, request.decided_at = RequestStatus.EXPIRED, now
            request.save(update_fields=["status", "decided_at", "updated_at"])
            if request.deployment.status == DeploymentStatus.PENDING_APPROVAL:
                deployments.transition(request.deployment, DeploymentStatus.REJECTED, reason="expired")
            audit_record(
                verb="approval.expired", target=request.deployment, details={"plan_digest": request.plan_digest}
            )
            notices.decided(request.deployment, "expired", None)
            expired += 1
    return expired
