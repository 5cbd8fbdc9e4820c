"""Writes for deployment templates and deployments: creation (plan and digest), the state machine,
and the controls people use (cancel, resume, retry, rollback). Each audits itself.

The engine (engine/runner.py) performs the worker's transitions through `transition()`
here, so every status change of a deployment goes through one table and one audit path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.approvals.models import ApprovalPolicy, ApprovalRequest, RequestStatus
from apps.approvals.selectors import policy_summary
from apps.audit.services import audit_record
from apps.core.changes import apply_changes, validated_save
from apps.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import can, ensure_can
from apps.environments.models import Environment
from apps.environments.validators import check_slug_available
from apps.gitops.selectors import repository_of
from apps.inventory.models import Installation
from apps.inventory.selectors import current_installations
from apps.notifications.services import notify
from apps.releases import lifecycle
from apps.releases.models import Release

from . import plans
from .models import (
    ACTIVE_STATUSES,
    Deployment,
    DeploymentTemplate,
    StepRunStatus,
    Strategy,
    TemplateVersion,
)
from .models import DeploymentStatus as S
from .plans import first_cursor
from .selectors import has_undo_work, previous_success

# Steps a person may end early with Promote.
PROMOTABLE = ("analysis", "wait", "manual_intervention")

# Which status may follow which; anything else is an InvalidTransition.
TRANSITIONS: dict[str, set[str]] = {
    S.PENDING_APPROVAL: {S.SCHEDULED, S.QUEUED, S.REJECTED, S.CANCELLED},
    S.SCHEDULED: {S.QUEUED, S.CANCELLED},
    S.QUEUED: {S.RUNNING, S.CANCELLED, S.FAILED},  # failed: a policy forbids its start
    S.RUNNING: {S.PAUSED, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ROLLED_BACK},
    S.PAUSED: {S.RUNNING, S.CANCELLED, S.FAILED},
    S.FAILED: {S.RUNNING},  # retry of the failed step
    S.SUCCEEDED: set(),
    S.CANCELLED: set(),
    S.ROLLED_BACK: set(),
    S.REJECTED: set(),
}


TRANSITION_FIELDS = [
    "status",
    "status_reason",
    "started_at",
    "queued_at",
    "finished_at",
    "cancel_requested",
    "lease_owner",
    "lease_expires_at",
    "next_run_at",
    "unit_attempts",
    "updated_at",
]


def transition(deployment: Deployment, status: str, *, reason: str = "", actor: User | None = None, **details) -> None:
    """Move a deployment (locked by the caller) to `status`, with history and an audit event.

    Leaving an active status frees the environment: the oldest queued deployment there starts.
    """
    if status not in TRANSITIONS[deployment.status]:
        raise InvalidTransition(
            f"{deployment} is {deployment.get_status_display().lower()}; it cannot become {S(status).label.lower()}."
        )
    previous = deployment.status
    now = timezone.now()
    deployment.status = status
    deployment.status_reason = reason
    if status == S.RUNNING and deployment.started_at is None:
        deployment.started_at = now
    if status == S.QUEUED:
        deployment.queued_at = now
    if status in (S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ROLLED_BACK, S.REJECTED):
        deployment.finished_at = now
    # Transitions happen between units of work: nobody holds the deployment, nothing is due later.
    deployment.lease_owner, deployment.lease_expires_at, deployment.next_run_at = "", None, None
    deployment.unit_attempts = 0
    deployment.save(update_fields=TRANSITION_FIELDS)
    audit_record(
        verb=f"deployment.{status}",
        target=deployment,
        actor=actor,
        summary=f"{deployment} of {deployment.release} to {deployment.environment.slug}: {status}",
        details={"from": previous, "reason": reason, **details},
    )
    if previous in ACTIVE_STATUSES and status not in ACTIVE_STATUSES:
        start_next_queued(deployment.environment_id)
    if status in (S.SUCCEEDED, S.FAILED, S.ROLLED_BACK):
        if deployment.started_at is not None:  # one refused before its start says nothing about the release
            lifecycle.deployment_finished(deployment)
        _announce(deployment, status, reason)


def _announce(deployment: Deployment, status: str, reason: str) -> None:
    """Failures, and successes in production, are news (apps.notifications)."""
    if status == S.SUCCEEDED and deployment.environment.tier != "production":
        return
    event = "deployment.succeeded_production" if status == S.SUCCEEDED else "deployment.failed"
    outcome = S(status).label.lower()
    notify(
        event,
        environment=deployment.environment,
        deployment=deployment,
        subject=f"Deployment #{deployment.pk} of {deployment.release} to {deployment.environment.name} {outcome}",
        body=reason or f"It {outcome}.",
        url=reverse("deployments:detail", args=[deployment.pk]),
        recipients=[deployment.created_by] if status != S.SUCCEEDED else [],
        data={"deployment": deployment.pk, "status": status, "reason": reason, "version": deployment.release.version},
    )


def _schedule(deployment: Deployment) -> None:
    from .engine.runner import schedule  # the engine calls these services: imported when needed

    schedule(deployment)


def start_next_queued(environment_id: int) -> Deployment | None:
    """Start the oldest queued deployment of an environment if none is active there: the ones behind it wait while
    something holds it. In the caller's transaction; the partial unique index decides races between two starters.
    While someone else holds the oldest one locked (another starter, an override being recorded), nothing starts:
    they start it themselves when they are done, or the dispatcher's next look does."""
    oldest = (
        Deployment.objects.filter(environment_id=environment_id, status=S.QUEUED)
        .order_by("queued_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if oldest is None:
        return None
    candidate = (
        Deployment.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("release__application", "environment", "created_by")
        .filter(pk=oldest, status=S.QUEUED)
        .first()
    )
    if (
        candidate is None
        or Deployment.objects.filter(environment_id=environment_id, status__in=ACTIVE_STATUSES).exists()
    ):
        return None
    from apps.policies.services import check_start  # policies build on deployments
    from apps.scheduling.services import start_blocker  # the calendar builds on deployments

    if blocker := start_blocker(candidate):
        if candidate.status_reason != blocker:  # said once, not at every look of the dispatcher
            Deployment.objects.filter(pk=candidate.pk).update(status_reason=blocker)
        return None
    results, held, waiting_helps = check_start(candidate)
    if held:
        if not waiting_helps:
            transition(candidate, S.FAILED, reason=held)
            return start_next_queued(environment_id)
        if candidate.status_reason != held or candidate.policy_results != results:
            Deployment.objects.filter(pk=candidate.pk).update(status_reason=held, policy_results=results)
        return None
    if results != candidate.policy_results:
        Deployment.objects.filter(pk=candidate.pk).update(policy_results=results)
    try:
        with transaction.atomic():
            transition(candidate, S.RUNNING, reason="")
    except IntegrityError:  # another deployment became active in the meantime; this one stays queued
        candidate.refresh_from_db()
        return None
    _schedule(candidate)
    return candidate


# --- Templates -----------------------------------------------------------------------------------------


def _require_perm(actor: User | None, perm: str, message: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDenied(message)


def template_create(
    *, actor: User | None, slug: str, name: str, steps: list[dict], description: str = ""
) -> DeploymentTemplate:
    """A template and its version 1. Raises PermissionDenied, ValidationFailed (named step errors), Conflict."""
    _require_perm(actor, "deployments.add_deploymenttemplate", "You may not create deployment templates.")
    check_slug_available(slug)
    steps = plans.validate_steps(steps)
    template = DeploymentTemplate(slug=slug, name=name, description=description)
    with transaction.atomic():
        validated_save(template, conflict=f"A template with slug {slug!r} exists already.")
        TemplateVersion.objects.create(template=template, number=1, steps=steps, created_by=actor)
        audit_record(verb="template.created", target=template, actor=actor, details={"version": 1, "steps": steps})
    return template


def template_update(
    *, actor: User | None, template: DeploymentTemplate, steps: list[dict] | None = None, **changes: Any
) -> DeploymentTemplate:
    """Change name/description; new steps make a new version (deployments keep the one they used)."""
    _require_perm(actor, "deployments.change_deploymenttemplate", "You may not change deployment templates.")
    unknown = set(changes) - {"name", "description"}
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    if steps is not None:
        steps = plans.validate_steps(steps)
    with transaction.atomic():
        template = DeploymentTemplate.objects.select_for_update().get(pk=template.pk)
        diff = apply_changes(template, changes)
        latest = template.versions.order_by("-number").first()
        if steps is not None and (latest is None or latest.steps != steps):
            template.version += 1
            TemplateVersion.objects.create(template=template, number=template.version, steps=steps, created_by=actor)
            diff["version"] = template.version
        if diff:
            validated_save(template)
            audit_record(verb="template.updated", target=template, actor=actor, details={"changes": diff})
    return template


def latest_version(template: DeploymentTemplate) -> TemplateVersion:
    return template.versions.get(number=template.version)


# --- Deployments ---------------------------------------------------------------------------------------


def _choose_template(release: Release, environment: Environment, template, version=None) -> TemplateVersion:
    if version is not None:
        return version
    # A pull-mode environment's own template comes first: an application's usual one runs steps on targets.
    pull = environment.default_template if repository_of(environment) is not None else None
    template = template or pull or release.application.default_template or environment.default_template
    if template is None:
        raise ValidationFailed(
            "No deployment template: name one, or set a default on the application or the environment.",
            fields={"template": ["Choose a template."]},
        )
    return latest_version(template)


def _inputs(
    *, actor, release, environment, strategy, strategy_options, template, template_version=None, switch_back=""
):
    if actor is not None:
        ensure_can(actor, "view", environment)
        if not can(actor, "view", release.application):
            raise NotFound("No such release.")
    strategy, strategy_options = _strategy(environment, strategy, strategy_options)
    version = _choose_template(release, environment, template, template_version)
    if switch_back:
        plan = plans.build_switch_back_plan(
            release=release,
            environment=environment,
            template_version=version,
            strategy=strategy,
            options=strategy_options,
            slot=switch_back,
        )
    else:
        plan = plans.build_plan(
            release=release,
            environment=environment,
            template_version=version,
            strategy=strategy,
            strategy_options=strategy_options,
        )
    return strategy, version, plan


def _strategy(environment: Environment, strategy: str | None, options: dict | None) -> tuple[str, dict | None]:
    """The request's strategy, else the environment's default. With the default strategy, the environment's
    default options apply where the request's options say nothing."""
    default = environment.default_strategy or Strategy.ALL_AT_ONCE
    strategy = strategy or default
    if strategy == default:
        options = {**environment.default_strategy_options, **(options or {})}
    return strategy, options


def deployment_preview(
    *,
    actor: User | None,
    release: Release,
    environment: Environment,
    strategy: str | None = None,
    strategy_options: dict | None = None,
    template: DeploymentTemplate | None = None,
) -> tuple[dict, str]:
    """The plan a deployment would run now, and its digest, without creating anything."""
    _, _, plan = _inputs(
        actor=actor,
        release=release,
        environment=environment,
        strategy=strategy,
        strategy_options=strategy_options,
        template=template,
    )
    return plan, plans.plan_digest(plan)


def promotion_preview(
    *,
    actor: User | None,
    release: Release,
    environment: Environment,
    strategy: str | None = None,
    strategy_options: dict | None = None,
    template: DeploymentTemplate | None = None,
) -> dict[str, Any]:
    """What deploying the release to the environment would do now, without doing it: the plan's digest,
    template version and strategy, per target the version there now and the one it would get with the
    variables the plan uses (secrets masked), and what would hold it: approvals, lifecycle obstacles, a
    freeze, a required booking. Raises what deployment_preview raises."""
    plan, digest = deployment_preview(
        actor=actor,
        release=release,
        environment=environment,
        strategy=strategy,
        strategy_options=strategy_options,
        template=template,
    )
    return promotion_effects(plan, digest, release=release, environment=environment)


def policy_results(release: Release, environment: Environment, strategy: str) -> list[dict]:
    """What the environment's policies would say of deploying the release now (the preview's "what applies")."""
    from apps.policies.services import as_data, evaluate  # policies build on deployments

    return as_data(evaluate(release=release, environment=environment, strategy=strategy, requester=None))


def promotion_effects(plan: dict, digest: str, *, release: Release, environment: Environment) -> dict[str, Any]:
    """promotion_preview's answer for a plan made already (the release page shows it beside the plan)."""
    from apps.scheduling import freezes  # the calendar builds on deployments

    artifacts = plan["release"]["artifacts"]
    new = artifacts[0]["version"] if artifacts else release.version
    now = {
        i.target_id: i.artifact.version
        for i in current_installations(environment_id=environment.pk, application_id=release.application_id)
    }
    targets = [
        {
            "target": name,
            "current": now.get(info["id"]),
            "new": new,
            "changed": now.get(info["id"]) != new,
            "variables": {key: plans.masked(value) for key, value in sorted(info["variables"].items())},
        }
        for name, info in sorted(plan["targets"].items())
    ]
    frozen = freezes.frozen_at(environment.pk, timezone.now())
    return {
        "environment": environment.slug,
        "plan_digest": digest,
        "template": plan["template"],
        "strategy": plan["strategy"],
        "phases": [{"name": p["name"], "targets": p["targets"]} for p in plan["phases"]],
        "targets": targets,
        "approvals": policy_summary(environment),
        "obstacles": lifecycle.obstacles(release, environment),
        "policies": policy_results(release, environment, plan["strategy"]["name"]),
        "freeze": freezes.describe(*frozen) if frozen else None,
        "requires_booking": environment.requires_booking,
    }


def deployment_create(
    *,
    actor: User | None,
    release: Release,
    environment: Environment,
    strategy: str | None = None,
    strategy_options: dict | None = None,
    template: DeploymentTemplate | None = None,
    scheduled_for: datetime | None = None,
    rollback_of: Deployment | None = None,
    template_version: TemplateVersion | None = None,
    override_reason: str = "",
    requested_by: User | None = None,
    switch_back: str = "",
    change_ticket: str = "",
    override_rules: list[str] = (),
) -> Deployment:
    """Resolve the plan and create the deployment: `scheduled` (a future `scheduled_for`), `running` when
    the environment is free, `queued` behind the active one otherwise.

    Raises NotFound (invisible release or environment), PermissionDenied (no `deploy` on the
    environment), ValidationFailed (strategy options, no template, no targets, an undefined
    template variable — named in the error, parameters invalid once rendered). `template_version`
    pins a version (rollbacks redeploy with the one that succeeded before). The release's lifecycle
    and blocks apply (PolicyViolation, 422) unless `override_reason` justifies an exception by someone
    with `manage` on the environment. `requested_by` is who set off a deployment the system makes
    (`actor=None`): CD triggers and automatic promotion. `switch_back` (a slot) makes a blue/green
    rollback that only sends the traffic back to that slot. The policies that apply to the environment are
    evaluated (apps.policies): a failure waiting cannot cure is a PolicyViolation naming the rules, unless
    they are in `override_rules` (`policy-set/kind`), which `override_reason` then justifies
    (apps.policies.services.policy_override: `manage`, audited, a second person for two-person rules);
    `change_ticket` is what `change_ticket` rules read.
    """
    if actor is not None:
        ensure_can(actor, "deploy", environment)
    now = timezone.now()
    if scheduled_for is not None and scheduled_for <= now:
        scheduled_for = None
    with transaction.atomic():
        # Locked while the plan is made, so the release cannot change between its plan and its first use.
        release = Release.objects.select_for_update(of=("self",)).select_related("application").get(pk=release.pk)
        environment = Environment.objects.get(pk=environment.pk)  # its live slot as it is now
        strategy, version, plan = _inputs(
            actor=actor,
            release=release,
            environment=environment,
            strategy=strategy,
            strategy_options=strategy_options,
            template=template,
            template_version=template_version,
            switch_back=switch_back,
        )
        lifecycle.check(actor=actor, release=release, environment=environment, override_reason=override_reason)
        from apps.policies.services import check_creation, policy_override  # policies build on deployments

        policy_results = check_creation(
            release=release,
            environment=environment,
            strategy=strategy,
            requester=actor or requested_by,
            at=scheduled_for or now,
            change_ticket=change_ticket,
            override_rules=override_rules,
        )
        needs_approval = ApprovalPolicy.objects.filter(environment=environment).exists()
        status = S.PENDING_APPROVAL if needs_approval else S.SCHEDULED if scheduled_for else S.QUEUED
        phase, step = first_cursor(plan)
        deployment = Deployment.objects.create(
            phase=phase,
            step=step,
            release=release,
            environment=environment,
            application=release.application,
            template_version=version,
            strategy=strategy,
            strategy_options={k: v for k, v in plan["strategy"].items() if k not in ("name", "switch_back")},
            status=status,
            queued_at=now if status == S.QUEUED else None,
            scheduled_for=scheduled_for,
            plan=plan,
            plan_digest=plans.plan_digest(plan),
            created_by=actor or requested_by,
            rollback_of=rollback_of,
            change_ticket=change_ticket,
            policy_results=policy_results,
        )
        audit_record(
            verb="deployment.requested",
            target=deployment,
            actor=actor,
            summary=f"{deployment} of {release} to {environment.slug}",
            details={
                "release": release.pk,
                "version": release.version,
                "environment": environment.slug,
                "strategy": plan["strategy"],
                "template": plan["template"],
                "plan_digest": deployment.plan_digest,
                "scheduled_for": scheduled_for,
                "rollback_of": rollback_of.pk if rollback_of else None,
            },
        )
        if override_rules:
            try:
                policy_override(actor=actor, deployment=deployment, rules=override_rules, justification=override_reason)
            except ValidationFailed as exc:  # named as this request names them
                names = {"rules": "override_rules", "justification": "override_reason"}
                raise ValidationFailed(exc.detail, fields={names[k]: v for k, v in exc.fields.items()}) from exc
            deployment.refresh_from_db()
        if needs_approval:
            from apps.approvals.services import request_open  # approvals builds on these services

            request_open(deployment)
        elif status == S.QUEUED:
            start_next_queued(environment.pk)
    deployment.refresh_from_db()
    return deployment


def release_approved(deployment: Deployment, *, actor: User | None) -> None:
    """Enough people approved (apps.approvals, in its transaction): the deployment goes on, scheduled or
    queued, and starts when its environment is free."""
    scheduled = deployment.scheduled_for is not None and deployment.scheduled_for > timezone.now()
    transition(deployment, S.SCHEDULED if scheduled else S.QUEUED, reason="Approved.", actor=actor)
    if not scheduled:
        start_next_queued(deployment.environment_id)


def _locked(deployment: Deployment) -> Deployment:
    return (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("environment", "release__application", "template_version__template")
        .get(pk=deployment.pk)
    )


def _ensure_deploy(actor: User | None, deployment: Deployment) -> None:
    if actor is not None:
        ensure_can(actor, "deploy", deployment.environment)


def deployment_cancel(*, actor: User | None, deployment: Deployment, reason: str = "") -> Deployment:
    """Cancel: at once when nothing is running (queued, scheduled, paused, waiting between units), else
    after the unit of work in progress ends (the engine sees `cancel_requested`)."""
    _ensure_deploy(actor, deployment)
    with transaction.atomic():
        deployment = _locked(deployment)
        if deployment.is_final:
            raise InvalidTransition(f"{deployment} has ended ({deployment.get_status_display().lower()}).")
        if deployment.mode == "rollback" and deployment.status == S.RUNNING:
            raise InvalidTransition(f"{deployment} is rolling back; a half-done rollback would be worse. Wait for it.")
        reason = reason or f"Cancelled by {actor.username if actor else 'the system'}."
        busy = (  # a worker is running a unit (an ownerless lease only means a message is on its way)
            deployment.status == S.RUNNING
            and deployment.lease_owner
            and deployment.lease_expires_at is not None
            and deployment.lease_expires_at > timezone.now()
        )
        if busy:
            deployment.cancel_requested = True
            deployment.save(update_fields=["cancel_requested", "updated_at"])
            audit_record(verb="deployment.cancel_requested", target=deployment, actor=actor, details={"reason": reason})
        else:
            if deployment.status == S.PENDING_APPROVAL:
                ApprovalRequest.objects.filter(deployment=deployment, status=RequestStatus.PENDING).update(
                    status=RequestStatus.CANCELLED, decided_at=timezone.now()
                )
            transition(deployment, S.CANCELLED, reason=reason, actor=actor)
    return deployment


def deployment_resume(*, actor: User | None, deployment: Deployment, comment: str = "") -> Deployment:
    """Continue a paused deployment: a manual intervention is confirmed done; a step interrupted by a lost
    worker runs again (the person checked it is safe)."""
    _ensure_deploy(actor, deployment)
    with transaction.atomic():
        deployment = _locked(deployment)
        if deployment.status != S.PAUSED:
            raise InvalidTransition(f"{deployment} is not paused.")
        now = timezone.now()
        waiting = deployment.step_runs.filter(status=StepRunStatus.PAUSED)
        who = actor.username if actor else "the system"
        for run in waiting:
            run.status, run.finished_at = StepRunStatus.SUCCEEDED, now
            run.message = f"Resumed by {who}." + (f" {comment}" if comment else "")
            run.save(update_fields=["status", "finished_at", "message"])
        deployment.step_runs.filter(status=StepRunStatus.INTERRUPTED).update(status=StepRunStatus.PENDING)
        deployment.cancel_requested = False
        transition(deployment, S.RUNNING, actor=actor, comment=comment)
        _schedule(deployment)
    return deployment


def deployment_retry(*, actor: User | None, deployment: Deployment) -> Deployment:
    """Run a failed deployment's failed step again, and go on from there."""
    _ensure_deploy(actor, deployment)
    with transaction.atomic():
        deployment = _locked(deployment)
        if deployment.status != S.FAILED or deployment.mode != "deploy":
            raise InvalidTransition("Only a failed deployment that was not rolled back can be retried.")
        if deployment.started_at is None:
            raise InvalidTransition(
                f"{deployment} never started ({deployment.status_reason}): deploy the release again."
            )
        later = Deployment.objects.filter(
            environment_id=deployment.environment_id, created_at__gt=deployment.created_at
        )
        if later.exclude(status__in=(S.CANCELLED, S.REJECTED)).exists():
            raise InvalidTransition(
                f"A later deployment to {deployment.environment.name} exists; retrying this one would undo it."
            )
        deployment.cancel_requested, deployment.finished_at = False, None
        try:
            with transaction.atomic():
                transition(deployment, S.RUNNING, actor=actor)
        except IntegrityError:
            raise InvalidTransition(
                f"Another deployment is active in {deployment.environment.name}; retry when it has ended."
            ) from None
        _schedule(deployment)
    return deployment


def deployment_rollback(*, actor: User | None, deployment: Deployment) -> Deployment:
    """Roll back. A running or paused deployment undoes what it did, in place (a blue/green one switches
    the traffic back). An ended one gets a new deployment of the previous successful release with the
    same strategy and options; after a blue/green deployment whose old slot still holds that release,
    one that only switches the traffic back. Raises InvalidTransition when there is nothing to go back to."""
    _ensure_deploy(actor, deployment)
    if deployment.status in ACTIVE_STATUSES:
        return _roll_back_in_place(actor, deployment)
    earlier = previous_success(deployment)
    if earlier is None:
        raise InvalidTransition(f"No earlier successful release of {deployment.application.slug} to roll back to.")
    return deployment_create(
        actor=actor,
        release=earlier.release,
        environment=deployment.environment,
        strategy=deployment.strategy,
        strategy_options=deployment.strategy_options,
        template_version=earlier.template_version,
        rollback_of=deployment,
        switch_back=switch_back_slot(deployment, earlier),
    )


def switch_back_slot(deployment: Deployment, earlier: Deployment | None) -> str:
    """The slot a rollback of this ended blue/green deployment can switch back to, or "": the deployment made
    its slot live, that is still so, and every target of the other slot still runs the earlier release."""
    slot = next((phase["slot"] for phase in reversed(deployment.plan["phases"]) if "slot" in phase), "")
    environment = deployment.environment
    if (
        earlier is None
        or deployment.status != S.SUCCEEDED
        or not slot
        or (environment.live_slot, environment.idle_weight) != (slot, 0)
        or not earlier.plan["release"]["artifacts"]
    ):
        return ""
    old = "blue" if slot == "green" else "green"
    targets = set(environment.targets.filter(slot=old).values_list("pk", flat=True))
    holding = set(
        Installation.objects.filter(
            current=True,
            target_id__in=targets,
            application_id=deployment.application_id,
            artifact_id=earlier.plan["release"]["artifacts"][0]["id"],
        ).values_list("target_id", flat=True)
    )
    return old if targets and holding == targets else ""


def _roll_back_in_place(actor: User | None, deployment: Deployment) -> Deployment:
    with transaction.atomic():
        deployment = _locked(deployment)
        if deployment.status not in ACTIVE_STATUSES or deployment.mode == "rollback":
            raise InvalidTransition(f"{deployment} is not running forwards; there is nothing to roll back now.")
        if not has_undo_work(deployment):
            raise InvalidTransition(f"{deployment} has changed nothing it can undo yet; cancel it instead.")
        who = actor.username if actor else "the system"
        now = timezone.now()
        deployment.step_runs.filter(status__in=(StepRunStatus.WAITING, StepRunStatus.PAUSED)).update(
            status=StepRunStatus.FAILED, message=f"Stopped: {who} chose to roll back.", finished_at=now
        )
        deployment.mode, deployment.cancel_requested = "rollback", False
        deployment.save(update_fields=["mode", "cancel_requested", "updated_at"])
        reason = f"Rolled back by {who}."
        if deployment.status == S.PAUSED:
            transition(deployment, S.RUNNING, reason=reason, actor=actor)
        else:
            deployment.status_reason = reason
            deployment.save(update_fields=["status_reason", "updated_at"])
            audit_record(verb="deployment.rollback_requested", target=deployment, actor=actor, details={})
        busy = deployment.lease_owner and deployment.lease_expires_at and deployment.lease_expires_at > now
        if not busy:  # else the unit in progress ends, and the engine starts the rollback (runner._record)
            Deployment.objects.filter(pk=deployment.pk).update(next_run_at=None)
            _schedule(deployment)
    return deployment


def deployment_override_freeze(*, actor: User | None, deployment: Deployment, reason: str) -> Deployment:
    """Let a queued or scheduled deployment start during a freeze (`manage` on the environment, a justification;
    audited). It starts at once if nothing else keeps it."""
    if actor is not None:
        ensure_can(actor, "manage", deployment.environment)
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": ["Say why it may start during the freeze."]})
    with transaction.atomic():
        deployment = _locked(deployment)
        if deployment.status not in (S.PENDING_APPROVAL, S.SCHEDULED, S.QUEUED):
            raise InvalidTransition(f"{deployment} has started already.")
        who = actor.username if actor else "the system"
        deployment.freeze_override = f"{reason.strip()} ({who})"
        deployment.save(update_fields=["freeze_override", "updated_at"])
        audit_record(verb="deployment.freeze_overridden", target=deployment, actor=actor, details={"reason": reason})
        if deployment.status == S.QUEUED:
            start_next_queued(deployment.environment_id)
    deployment.refresh_from_db()
    return deployment


def deployment_promote(*, actor: User | None, deployment: Deployment, comment: str = "") -> Deployment:
    """End the current analysis gate, judgment or wait early and go on to the next stage."""
    _ensure_deploy(actor, deployment)
    with transaction.atomic():
        deployment = _locked(deployment)
        step = plans.current_step(deployment)
        if deployment.mode != "deploy" or step.get("kind") not in PROMOTABLE:
            raise InvalidTransition(f"{deployment} is not at an analysis gate, a judgment or a wait.")
        if deployment.status == S.PAUSED:
            return deployment_resume(actor=actor, deployment=deployment, comment=comment)
        now = timezone.now()
        if deployment.status != S.RUNNING or (deployment.lease_owner and deployment.lease_expires_at > now):
            raise InvalidTransition(f"{deployment} is busy with a probe round; try again in a moment.")
        who = actor.username if actor else "the system"
        ended = deployment.step_runs.filter(
            action="deploy", phase=deployment.phase, step=deployment.step, status=StepRunStatus.WAITING
        ).update(
            status=StepRunStatus.SUCCEEDED,
            finished_at=now,
            resume_at=None,
            message=f"Promoted by {who}." + (f" {comment}" if comment else ""),
        )
        if not ended:
            raise InvalidTransition(f"{step['name']} has not started yet; try again in a moment.")
        audit_record(
            verb="deployment.promoted",
            target=deployment,
            actor=actor,
            details={
                "phase": deployment.plan["phases"][deployment.phase]["name"],
                "step": step["name"],
                "comment": comment,
            },
        )
        Deployment.objects.filter(pk=deployment.pk).update(next_run_at=None)
        _schedule(deployment)
    return deployment
