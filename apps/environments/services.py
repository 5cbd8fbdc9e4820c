"""Writes for environments, targets, variables, lifecycles and environment access. Each audits itself.

Permission rules: creating environments and lifecycles needs the global `add_environment`
/ `add_lifecycle` permission (staff); everything on one environment needs `manage` on it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.models import Team, User
from apps.accounts.services import object_access_set, team_grant
from apps.audit.services import audit_record
from apps.core import crypto
from apps.core.changes import apply_changes, validated_save
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.permissions import can, ensure_can

from .models import Environment, Lifecycle, LifecycleStage, Target, Variable
from .validators import check_slug_available

# What the owner team of a new environment may do there at once. Approving stays a separate grant.
OWNER_ACTIONS = ("view", "deploy", "book", "manage")

ENVIRONMENT_FIELDS = {
    "name",
    "default_template",
    "tier",
    "owner_team",
    "timezone",
    "labels",
    "description",
    "requires_booking",
    "protected",
    "default_strategy",
    "default_strategy_options",
    "traffic_hook",
    "traffic_weights",
    "booking_min_minutes",
    "booking_max_minutes",
    "booking_horizon_days",
}
TARGET_FIELDS = {"name", "address", "slot", "labels", "health_check_url", "path", "attributes"}


def _require_global(actor: User | None, perm: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDenied("You may not do this; ask an administrator.")


def _ensure_manage(actor: User | None, environment: Environment) -> None:
    """`manage` on the environment; `actor=None` is the system (commands, seed data)."""
    if actor is not None:
        ensure_can(actor, "manage", environment)


def _only(changes: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    return changes


# --- Environments ------------------------------------------------------------------------------


def environment_create(*, actor: User | None, slug: str, owner_team: Team, **fields: Any) -> Environment:
    """Create an environment; its owner team gets view, deploy, book and manage on it.

    Raises PermissionDenied (no add_environment), ValidationFailed, Conflict (slug taken).
    """
    _require_global(actor, "environments.add_environment")
    check_slug_available(slug)
    environment = Environment(slug=slug, owner_team=owner_team, **_only(fields, ENVIRONMENT_FIELDS))
    with transaction.atomic():
        validated_save(environment, conflict=f"An environment with slug {slug!r} exists already.")
        for action in OWNER_ACTIONS:
            team_grant(team=owner_team, perm=f"environments.{action}_environment", obj=environment, actor=actor)
        audit_record(
            verb="environment.created",
            target=environment,
            actor=actor,
            details={"tier": environment.tier, "owner_team": owner_team.slug},
        )
    return environment


def environment_update(*, actor: User | None, environment: Environment, **changes: Any) -> Environment:
    """Change an environment's fields (not its slug). Raises NotFound, PermissionDenied, ValidationFailed."""
    _ensure_manage(actor, environment)
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=environment.pk)
        diff = apply_changes(environment, _only(changes, ENVIRONMENT_FIELDS))
        if diff:
            validated_save(environment)
            audit_record(verb="environment.updated", target=environment, actor=actor, details={"changes": diff})
    return environment


def environment_delete(*, actor: User | None, environment: Environment) -> None:
    """Delete an empty environment. Raises NotFound, PermissionDenied, Conflict (it has targets,
    variables or lifecycle stages)."""
    _ensure_manage(actor, environment)
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=environment.pk)
        if environment.targets.exists() or environment.variables.exists() or environment.lifecycle_stages.exists():
            raise Conflict("Remove its targets, variables and lifecycle stages first.")
        audit_record(verb="environment.deleted", target=environment, actor=actor, details={"slug": environment.slug})
        environment.delete()


def environment_grant(*, actor: User | None, environment: Environment, team: Team, action: str) -> None:
    """Grant `action` on the environment to `team` (accounts.services.object_access_set)."""
    object_access_set(actor=actor, obj=environment, team=team, action=action, granted=True)


def environment_revoke(*, actor: User | None, environment: Environment, team: Team, action: str) -> None:
    """Withdraw `action` on the environment from `team`; the last managing team keeps `manage`."""
    object_access_set(actor=actor, obj=environment, team=team, action=action, granted=False)


# --- Targets -------------------------------------------------------------------------------------


def target_create(*, actor: User | None, environment: Environment, **fields: Any) -> Target:
    """Add a target to an environment. Raises NotFound, PermissionDenied, ValidationFailed, Conflict (name taken)."""
    _ensure_manage(actor, environment)
    target = Target(environment=environment, **_only(fields, TARGET_FIELDS))
    with transaction.atomic():
        validated_save(target, conflict=f"{environment} has a target named {target.name!r} already.")
        audit_record(verb="target.created", target=target, actor=actor, details={"environment": environment.slug})
    return target


def target_update(*, actor: User | None, target: Target, **changes: Any) -> Target:
    """Change a target's fields. Raises NotFound, PermissionDenied, ValidationFailed, Conflict (name taken)."""
    _ensure_manage(actor, target.environment)
    with transaction.atomic():
        target = Target.objects.select_for_update().select_related("environment").get(pk=target.pk)
        diff = apply_changes(target, _only(changes, TARGET_FIELDS))
        if diff:
            validated_save(target, conflict=f"{target.environment} has a target named {target.name!r} already.")
            audit_record(
                verb="target.updated",
                target=target,
                actor=actor,
                details={"environment": target.environment.slug, "changes": diff},
            )
    return target


def target_delete(*, actor: User | None, target: Target) -> None:
    """Delete a target and its variable overrides."""
    _ensure_manage(actor, target.environment)
    with transaction.atomic():
        overrides = list(target.variables.values_list("name", flat=True))
        audit_record(
            verb="target.deleted",
            target=target,
            actor=actor,
            details={"environment": target.environment.slug, "overrides_deleted": overrides},
        )
        target.delete()


# --- Variables -----------------------------------------------------------------------------------


def variable_create(
    *,
    actor: User | None,
    environment: Environment,
    name: str,
    value: str,
    secret: bool = False,
    target: Target | None = None,
) -> Variable:
    """Define a variable for the environment, or override it for one of its targets.

    A secret value is encrypted before it reaches the database. Raises NotFound,
    PermissionDenied, ValidationFailed (bad name, target of another environment), Conflict.
    """
    _ensure_manage(actor, environment)
    if target is not None and target.environment_id != environment.pk:
        raise ValidationFailed(fields={"target": [f"No target {target.name!r} in {environment}."]})
    variable = Variable(
        environment=environment,
        target=target,
        name=name,
        secret=secret,
        value=crypto.encrypt(value) if secret else value,
        fingerprint=crypto.fingerprint(value) if secret else "",
    )
    with transaction.atomic():
        validated_save(variable, conflict=f"{name} is defined already{f' for {target.name}' if target else ''}.")
        audit_record(verb="variable.created", target=variable, actor=actor, details=_variable_details(variable))
    return variable


def variable_update(
    *, actor: User | None, variable: Variable, value: str | None = None, secret: bool | None = None
) -> Variable:
    """Change a variable's value or secrecy. Turning a secret into a plain value needs a new value,
    so a secret is never revealed by flipping the flag."""
    _ensure_manage(actor, variable.environment)
    with transaction.atomic():
        # of=("self",): PostgreSQL cannot lock the nullable side of the outer join to the target.
        variable = (
            Variable.objects.select_for_update(of=("self",)).select_related("environment", "target").get(pk=variable.pk)
        )
        secret = variable.secret if secret is None else secret
        if variable.secret and not secret and value is None:
            raise ValidationFailed(fields={"value": ["Give a new value to make a secret variable plain."]})
        changed = {}
        if secret != variable.secret:
            changed["secret"] = [variable.secret, secret]
        if value is not None:
            stored = crypto.encrypt(value) if secret else value
            if variable.secret or secret:
                changed["value"] = ["(hidden)", "(hidden)"]
            elif value != variable.value:
                changed["value"] = [variable.value, value]
            variable.value = stored
            variable.fingerprint = crypto.fingerprint(value) if secret else ""
        elif secret and not variable.secret:
            variable.value, variable.fingerprint = crypto.encrypt(variable.value), crypto.fingerprint(variable.value)
        variable.secret = secret
        if changed:
            validated_save(variable)
            audit_record(
                verb="variable.updated",
                target=variable,
                actor=actor,
                details={**_variable_details(variable), "changes": changed},
            )
    return variable


def variable_delete(*, actor: User | None, variable: Variable) -> None:
    """Delete a variable (or a target's override). Raises NotFound, PermissionDenied."""
    _ensure_manage(actor, variable.environment)
    with transaction.atomic():
        audit_record(verb="variable.deleted", target=variable, actor=actor, details=_variable_details(variable))
        variable.delete()


def _variable_details(variable: Variable) -> dict:
    """What the audit trail says about a variable: never its value if it is secret."""
    details = {"environment": variable.environment.slug, "name": variable.name, "secret": variable.secret}
    if variable.target_id:
        details["target"] = variable.target.name
    if not variable.secret:
        details["value"] = variable.value
    return details


def secrets_rotate(*, actor: User | None = None) -> int:
    """Re-encrypt every secret variable with the first key of RELEASEHUB_ENCRYPTION_KEY, and take its fingerprint
    again (so a new SECRET_KEY takes effect for comparisons too); returns how many.

    Raises ValidationFailed when a secret cannot be decrypted with any configured key.
    """
    count = 0
    with transaction.atomic():
        for variable in Variable.objects.select_for_update().filter(secret=True).order_by("pk"):
            try:
                variable.value = crypto.rotate(variable.value)
                variable.fingerprint = crypto.fingerprint(crypto.decrypt(variable.value))
            except crypto.InvalidToken as exc:
                raise ValidationFailed(
                    f"Secret {variable.name} (id {variable.pk}) opens with none of the configured keys; "
                    "nothing was changed."
                ) from exc
            variable.save(update_fields=["value", "fingerprint", "updated_at"])
            count += 1
        audit_record(verb="secrets.rotated", object_type="environments.variable", actor=actor, details={"count": count})
    return count


# --- Lifecycles ----------------------------------------------------------------------------------


def lifecycle_create(
    *, actor: User | None, slug: str, name: str, description: str = "", stages: list[dict]
) -> Lifecycle:
    """Create a lifecycle with its ordered stages: [{name, automatic, environments: [Environment]}].

    Raises PermissionDenied (no add_lifecycle), ValidationFailed, Conflict (slug taken).
    """
    _require_global(actor, "environments.add_lifecycle")
    lifecycle = Lifecycle(slug=slug, name=name, description=description)
    with transaction.atomic():
        validated_save(lifecycle, conflict=f"A lifecycle with slug {slug!r} exists already.")
        _replace_stages(lifecycle, stages, actor=actor)
        audit_record(verb="lifecycle.created", target=lifecycle, actor=actor, details={"stages": _describe(stages)})
    return lifecycle


def lifecycle_update(
    *, actor: User | None, lifecycle: Lifecycle, stages: list[dict] | None = None, **changes: Any
) -> Lifecycle:
    """Change a lifecycle's name or description, and replace its stages when given."""
    _require_global(actor, "environments.change_lifecycle")
    with transaction.atomic():
        lifecycle = Lifecycle.objects.select_for_update().get(pk=lifecycle.pk)
        diff = apply_changes(lifecycle, _only(changes, {"name", "description"}))
        if diff:
            validated_save(lifecycle)
        if stages is not None and _describe(stages) != _describe_stored(lifecycle):
            _replace_stages(lifecycle, stages, actor=actor)
            diff["stages"] = _describe(stages)
        if diff:
            audit_record(verb="lifecycle.updated", target=lifecycle, actor=actor, details={"changes": diff})
    return lifecycle


def lifecycle_delete(*, actor: User | None, lifecycle: Lifecycle) -> None:
    """Delete a lifecycle and its stages. Raises PermissionDenied (no delete_lifecycle)."""
    _require_global(actor, "environments.delete_lifecycle")
    with transaction.atomic():
        audit_record(verb="lifecycle.deleted", target=lifecycle, actor=actor, details={"slug": lifecycle.slug})
        for stage in lifecycle.stages.all():
            stage.delete()
        lifecycle.delete()


def _replace_stages(lifecycle: Lifecycle, stages: list[dict], *, actor: User | None) -> None:
    """Replace the stages; every environment must exist for the actor (be visible), at most once."""
    if not stages:
        raise ValidationFailed(fields={"stages": ["A lifecycle needs at least one stage."]})
    seen: set[int] = set()
    for index, stage in enumerate(stages):
        environments = list(stage.get("environments") or [])
        if not environments:
            raise ValidationFailed(fields={f"stages.{index}.environments": ["A stage needs at least one environment."]})
        if actor is not None and any(not can(actor, "view", environment) for environment in environments):
            raise ValidationFailed(fields={f"stages.{index}.environments": ["Unknown environment."]})
        repeated = {env.pk for env in environments} & seen
        if repeated:
            raise ValidationFailed(
                fields={f"stages.{index}.environments": ["An environment can be in one stage only."]}
            )
        seen |= {env.pk for env in environments}
    for stage in lifecycle.stages.all():
        stage.delete()  # one by one, so each leaves a history row
    for position, stage in enumerate(stages, start=1):
        row = LifecycleStage(
            lifecycle=lifecycle, position=position, name=stage["name"], automatic=bool(stage.get("automatic"))
        )
        validated_save(row)
        row.environments.set(stage["environments"])


def _describe_stored(lifecycle: Lifecycle) -> list[dict]:
    stages = lifecycle.stages.order_by("position").prefetch_related("environments")
    return _describe(
        [{"name": s.name, "automatic": s.automatic, "environments": list(s.environments.all())} for s in stages]
    )


def _describe(stages: list[dict]) -> list[dict]:
    return [
        {"name": s["name"], "automatic": bool(s.get("automatic")), "environments": [e.slug for e in s["environments"]]}
        for s in stages
    ]


# --- Traffic -------------------------------------------------------------------------------------


def traffic_switched(*, deployment, slot: str, weight: int) -> Environment:
    """A switch_traffic step sent `weight` percent of the environment's traffic to `slot`: record the live
    slot (the one with most of the traffic) and the idle slot's share. Called by the engine only."""
    other = "blue" if slot == "green" else "green"
    live, idle_weight = (slot, 0) if weight >= 100 else (other, weight)
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=deployment.environment_id)
        before = {"live_slot": environment.live_slot, "idle_weight": environment.idle_weight}
        environment.live_slot, environment.idle_weight = live, idle_weight
        environment.save(update_fields=["live_slot", "idle_weight", "updated_at"])
        audit_record(
            verb="environment.traffic_switched",
            target=environment,
            summary=f"{environment.slug}: {live} live" + (f", {idle_weight}% to {slot}" if idle_weight else ""),
            details={"deployment": deployment.pk, "before": before, "live_slot": live, "idle_weight": idle_weight},
        )
    deployment.environment.live_slot, deployment.environment.idle_weight = live, idle_weight
    return environment
