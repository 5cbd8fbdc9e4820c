"""Promotion of releases through their lifecycle, and blocks after failures.

- A release may deploy to an environment of stage k only once it succeeded in every environment of
  stage k-1; someone with `manage` on the environment may override that with a written
  justification (audited).
- A release that failed or was rolled back in an environment is blocked there until someone with
  `manage` lifts the block (audited) or it succeeds there after all.
- After a success, the next stage is deployed by itself when it is automatic; a stage with an
  approval policy then waits for its approvers like any deployment.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import NotFound, PolicyViolation, ReleaseHubError, ValidationFailed
from apps.core.permissions import ensure_can
from apps.environments.models import Environment, LifecycleStage

from .models import Release, ReleaseBlock

logger = logging.getLogger(__name__)


def stages_of(release: Release) -> list[LifecycleStage]:
    """The release's lifecycle stages in order, with their environments (two queries); [] without one."""
    if release.lifecycle_id is None:
        return []
    return list(release.lifecycle.stages.order_by("position").prefetch_related("environments"))


def succeeded_in(release: Release) -> set[int]:
    """Ids of the environments where a deployment of the release succeeded."""
    from apps.deployments.models import Deployment, DeploymentStatus

    succeeded = Deployment.objects.filter(release=release, status=DeploymentStatus.SUCCEEDED)
    return set(succeeded.values_list("environment_id", flat=True))


def obstacles(release: Release, environment: Environment) -> list[str]:
    """Why the release may not deploy to the environment now (empty: it may)."""
    reasons = [
        f"Blocked in {environment.name}: {block.reason}"
        for block in ReleaseBlock.objects.filter(release=release, environment=environment, lifted_at__isnull=True)
    ]
    stages = stages_of(release)
    for index, stage in enumerate(stages):
        if index and any(env.pk == environment.pk for env in stage.environments.all()):
            done = succeeded_in(release)
            missing = [env.name for env in stages[index - 1].environments.all() if env.pk not in done]
            if missing:
                reasons.append(
                    f"{release} has not succeeded in the previous stage ({stages[index - 1].name}) yet: "
                    f"{', '.join(missing)}."
                )
            break
    return reasons


def check(*, actor, release: Release, environment: Environment, override_reason: str = "") -> None:
    """Called by deployment_create: raises PolicyViolation (422) naming the obstacles, unless someone with
    `manage` on the environment overrides them with a justification (audited)."""
    reasons = obstacles(release, environment)
    if not reasons:
        return
    if not override_reason.strip():
        raise PolicyViolation(" ".join(reasons), rules=["lifecycle"])
    if actor is not None:
        ensure_can(actor, "manage", environment)
    audit_record(
        verb="promotion.override",
        target=release,
        actor=actor,
        details={"environment": environment.slug, "obstacles": reasons, "justification": override_reason.strip()},
    )


def deployment_finished(deployment) -> None:
    """After a deployment ends (in its transaction): block the release where it failed or was rolled back;
    lift the block where it succeeded, then promote into the next stage when that stage is automatic."""
    from apps.deployments.models import DeploymentStatus

    release, environment = deployment.release, deployment.environment
    if deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK):
        if not ReleaseBlock.objects.filter(release=release, environment=environment, lifted_at__isnull=True).exists():
            reason = f"{deployment} {deployment.get_status_display().lower()}: {deployment.status_reason}".strip(": ")
            ReleaseBlock.objects.create(release=release, environment=environment, deployment=deployment, reason=reason)
            audit_record(
                verb="release.blocked", target=release, details={"environment": environment.slug, "reason": reason}
            )
    elif deployment.status == DeploymentStatus.SUCCEEDED:
        lifted = ReleaseBlock.objects.filter(release=release, environment=environment, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lift_reason=f"{deployment} succeeded."
        )
        if lifted:
            audit_record(verb="release.unblocked", target=release, details={"environment": environment.slug})
        _promote_automatically(deployment)


def _promote_automatically(deployment) -> None:
    release = deployment.release
    stages = stages_of(release)
    here = next(
        (i for i, s in enumerate(stages) if any(e.pk == deployment.environment_id for e in s.environments.all())), None
    )
    if here is None or here + 1 >= len(stages) or not stages[here + 1].automatic:
        return
    for environment in stages[here + 1].environments.all():
        if obstacles(release, environment) or _underway(release, environment):
            continue  # the rest of this stage has not succeeded yet, or it is blocked, or already on its way
        try:
            with transaction.atomic():
                deploy(requested_by=deployment.created_by, release=release, environment=environment)
        except ReleaseHubError as exc:  # e.g. no targets there: recorded, the finished deployment stays as it is
            audit_record(
                verb="promotion.failed",
                target=release,
                details={"environment": environment.slug, "error": exc.detail, "fields": exc.fields},
            )


def _underway(release: Release, environment: Environment) -> bool:
    from apps.deployments.models import Deployment, DeploymentStatus

    live = (
        DeploymentStatus.PENDING_APPROVAL,
        DeploymentStatus.SCHEDULED,
        DeploymentStatus.QUEUED,
        DeploymentStatus.RUNNING,
        DeploymentStatus.PAUSED,
        DeploymentStatus.SUCCEEDED,
    )
    return Deployment.objects.filter(release=release, environment=environment, status__in=live).exists()


def deploy(*, requested_by, release: Release, environment: Environment):
    """A deployment the platform makes on its own (CD trigger, automatic promotion): checked as the
    system, attributed to the person or CI token's user who set it off (who then may not approve it)."""
    from apps.deployments.services import deployment_create

    return deployment_create(actor=None, requested_by=requested_by, release=release, environment=environment)


def next_stage(release: Release) -> tuple[LifecycleStage | None, list[Environment]]:
    """The first stage the release has not succeeded in everywhere, and its environments still to do."""
    done = succeeded_in(release)
    for stage in stages_of(release):
        todo = [env for env in stage.environments.all() if env.pk not in done]
        if todo:
            return stage, todo
    return None, []


def promote(*, actor, release: Release, override_reason: str = "") -> list:
    """Deploy the release to the environments of its next stage (the Promote button). Raises
    ValidationFailed (no lifecycle, or nothing left), and what deployment_create raises."""
    from apps.deployments.services import deployment_create

    if release.lifecycle_id is None:
        raise ValidationFailed(f"{release} has no lifecycle to be promoted through.")
    stage, environments = next_stage(release)
    if stage is None:
        raise ValidationFailed(f"{release} has gone through every stage of {release.lifecycle.name}.")
    with transaction.atomic():
        return [
            deployment_create(actor=actor, release=release, environment=env, override_reason=override_reason)
            for env in environments
        ]


def unblock(*, actor, release: Release, environment: Environment, reason: str) -> ReleaseBlock:
    """Lift the release's block in the environment (`manage` on it, a reason; audited)."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed(fields={"reason": ["Say why it may be deployed there again."]})
    with transaction.atomic():
        block = (
            ReleaseBlock.objects.select_for_update()
            .filter(release=release, environment=environment, lifted_at__isnull=True)
            .first()
        )
        if block is None:
            raise NotFound(f"{release} is not blocked in {environment.name}.")
        block.lifted_at, block.lifted_by, block.lift_reason = timezone.now(), actor, reason.strip()
        block.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        audit_record(
            verb="release.unblocked",
            target=release,
            actor=actor,
            details={"environment": environment.slug, "reason": reason.strip()},
        )
    return block
