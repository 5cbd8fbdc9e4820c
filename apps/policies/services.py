"""Policy sets: creating, changing and deleting them (with their rules, validated per kind), evaluating the rules
that apply to a deployment of a release to an environment, and overriding failed rules of one deployment."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.changes import apply_changes, validated_save
from apps.core.errors import Conflict, InvalidTransition, PermissionDenied, PolicyViolation, ValidationFailed
from apps.core.permissions import ensure_can
from apps.deployments.models import DeploymentStatus
from apps.environments.choices import Tier
from apps.environments.models import Environment
from apps.environments.validators import check_slug_available

from . import rules as rule_kinds
from .models import PolicyOverride, PolicySet, Rule

ADD_PERMISSION = "policies.add_policyset"
CHANGE_PERMISSION = "policies.change_policyset"
DELETE_PERMISSION = "policies.delete_policyset"
RULE_FIELDS = {"kind", "params", "overridable", "two_person"}
SET_FIELDS = {"name", "description", "environments", "tiers", "all_environments", "active", "rules"}


def _rules_errors(rules: Any) -> dict[str, list[str]]:
    if not isinstance(rules, list) or not rules:
        return {"rules": ["A list of at least one rule."]}
    errors: dict[str, list[str]] = {}
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict) or set(rule) - RULE_FIELDS or "kind" not in rule:
            errors[where] = ["A rule is an object with kind and params (and overridable, two_person)."]
            continue
        for field, messages in rule_kinds.params_errors(rule["kind"], rule.get("params", {})).items():
            errors[f"{where}.{field}"] = messages
    return errors


# The global permission each write needs, and what someone without it is told.
WRITE_PERMISSIONS = {
    "add": (ADD_PERMISSION, "You may not create policy sets."),
    "change": (CHANGE_PERMISSION, "You may not change policy sets; ask an administrator."),
    "delete": (DELETE_PERMISSION, "You may not delete policy sets; ask an administrator."),
}


def ensure_may(actor: User | None, action: str, environments) -> None:
    """Raise unless `actor` may `action` ("add", "change", "delete") a policy set attached to `environments`: that
    needs the global permission and `manage` on every one of them (`actor=None` is the system). Raises
    PermissionDenied, NotFound (an environment the actor may not view)."""
    if actor is None:
        return
    perm, refusal = WRITE_PERMISSIONS[action]
    if not actor.has_perm(perm):
        raise PermissionDenied(refusal)
    for environment in environments:
        ensure_can(actor, "manage", environment)


def _ensure_valid(*, rules: Any, environments, tiers: list[str], all_environments: bool) -> None:
    """Raise ValidationFailed naming each problem: a rule (`rules[2].params.max`; not checked when `rules` is
    None), an unknown tier, or a set attached nowhere."""
    errors = _rules_errors(rules) if rules is not None else {}
    unknown = sorted(set(tiers) - set(Tier.values))
    if unknown:
        errors["tiers"] = [f"Unknown tier(s) {', '.join(unknown)}; known: {', '.join(Tier.values)}."]
    if not (environments or tiers or all_environments):
        errors["environments"] = ["Attach it to environments, tiers or all environments."]
    if errors:
        raise ValidationFailed(fields=errors)


def _described(rules: list[dict]) -> list[dict]:
    """Rules as stored, defaults filled in: what the audit trail records and what an update compares."""
    return [
        {
            "kind": rule["kind"],
            "params": rule.get("params", {}),
            "overridable": rule.get("overridable", True),
            "two_person": rule.get("two_person", False),
        }
        for rule in rules
    ]


def _stored_rules(policy_set: PolicySet) -> list[dict]:
    return [
        {"kind": r.kind, "params": r.params, "overridable": r.overridable, "two_person": r.two_person}
        for r in policy_set.rules.all()
    ]


def _write_rules(policy_set: PolicySet, rules: list[dict]) -> None:
    """Make the set's rules these (described) ones: the row at each position is updated in place, so a rule's
    history goes on through edits; rows are added at the end or the extra ones deleted. Saved one by one, so
    each change leaves a history row."""
    existing = {rule.position: rule for rule in policy_set.rules.all()}
    for position, values in enumerate(rules):
        rule = existing.pop(position, None) or Rule(policy_set=policy_set, position=position)
        if rule.pk is None or any(getattr(rule, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(rule, field, value)
            rule.save()
    for rule in existing.values():
        rule.delete()


def policy_set_create(
    *,
    actor: User | None,
    slug: str,
    name: str,
    rules: list[dict],
    description: str = "",
    environments: list[Environment] = (),
    tiers: list[str] = (),
    all_environments: bool = False,
) -> PolicySet:
    """Create a policy set with its rules, attached to environments (which the actor must manage), tiers or all.
    Raises PermissionDenied (no add_policyset), ValidationFailed (named per rule: `rules[2].params.max`),
    Conflict (slug taken)."""
    ensure_may(actor, "add", environments)
    check_slug_available(slug)
    _ensure_valid(rules=rules, environments=environments, tiers=tiers, all_environments=all_environments)
    policy_set = PolicySet(
        slug=slug, name=name, description=description, tiers=sorted(set(tiers)), all_environments=all_environments
    )
    with transaction.atomic():
        validated_save(policy_set, conflict=f"A policy set with slug {slug!r} exists already.")
        policy_set.environments.set(environments)
        _write_rules(policy_set, _described(rules))
        audit_record(
            verb="policy_set.created",
            target=policy_set,
            actor=actor,
            details={
                "rules": _described(rules),
                "environments": sorted(e.slug for e in environments),
                "tiers": policy_set.tiers,
                "all_environments": all_environments,
            },
        )
    return policy_set


def policy_set_update(*, actor: User | None, policy_set: PolicySet, **changes: Any) -> PolicySet:
    """Change a policy set's name, description, attachment (`environments`, `tiers`, `all_environments`),
    `active`, or `rules`, which replace its rules (see _write_rules). Needs change_policyset and `manage` on every
    environment it is attached to, before and after the change. Audited as `policy_set.updated` with each
    changed field's old and new value.

    Raises PermissionDenied, NotFound (an environment the actor may not view), ValidationFailed (as
    policy_set_create; also for a field that cannot change, such as the slug)."""
    unknown = set(changes) - SET_FIELDS
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    with transaction.atomic():
        policy_set = PolicySet.objects.select_for_update().get(pk=policy_set.pk)
        before = sorted(policy_set.environments.all(), key=lambda e: e.slug)
        after = sorted(changes.pop("environments", before), key=lambda e: e.slug)
        ensure_may(actor, "change", sorted({*before, *after}, key=lambda e: e.slug))
        rules = changes.pop("rules", None)
        _ensure_valid(
            rules=rules,
            environments=after,
            tiers=changes.get("tiers", policy_set.tiers),
            all_environments=changes.get("all_environments", policy_set.all_environments),
        )
        if "tiers" in changes:
            changes["tiers"] = sorted(set(changes["tiers"]))
        diff = apply_changes(policy_set, changes)
        if before != after:
            policy_set.skip_history_when_saving = True  # the save below writes one history row for the whole change
            policy_set.environments.set(after)
            del policy_set.skip_history_when_saving
            diff["environments"] = [[e.slug for e in before], [e.slug for e in after]]
        if diff:
            validated_save(policy_set)
        if rules is not None:
            stored = _stored_rules(policy_set)
            if stored != _described(rules):
                _write_rules(policy_set, _described(rules))
                diff["rules"] = [stored, _described(rules)]
        if diff:
            audit_record(verb="policy_set.updated", target=policy_set, actor=actor, details={"changes": diff})
    return policy_set


def policy_set_delete(*, actor: User | None, policy_set: PolicySet) -> None:
    """Delete a policy set and its rules (each leaves a history row); deployments keep the results they recorded.
    Needs delete_policyset and `manage` on every environment it is attached to. Raises PermissionDenied, NotFound
    (an attached environment the actor may not view)."""
    with transaction.atomic():
        policy_set = PolicySet.objects.select_for_update().get(pk=policy_set.pk)
        environments = sorted(policy_set.environments.all(), key=lambda e: e.slug)
        ensure_may(actor, "delete", environments)
        audit_record(
            verb="policy_set.deleted",
            target=policy_set,
            actor=actor,
            details={
                "slug": policy_set.slug,
                "rules": _stored_rules(policy_set),
                "environments": [e.slug for e in environments],
                "tiers": policy_set.tiers,
                "all_environments": policy_set.all_environments,
            },
        )
        policy_set.delete()


def policy_sets_for(environment: Environment) -> list[PolicySet]:
    """The active policy sets that apply to the environment, with their rules (two queries; the tier test is
    done here, JSON containment not being portable)."""
    candidates = (
        PolicySet.objects.filter(Q(all_environments=True) | Q(environments=environment) | ~Q(tiers=[]), active=True)
        .annotate(
            attached=Exists(
                PolicySet.environments.through.objects.filter(
                    policyset_id=OuterRef("pk"), environment_id=environment.pk
                )
            )
        )
        .prefetch_related("rules")
        .order_by("name")
    )
    return [s for s in candidates.distinct() if s.all_environments or s.attached or environment.tier in s.tiers]


def rule_key(policy_set: str, kind: str) -> str:
    """How people name a rule: `policy-set/kind`, in 422 bodies and in overrides."""
    return f"{policy_set}/{kind}"


@dataclass
class Result:
    """One rule's verdict, as stored with a deployment and shown in previews."""

    policy_set: str
    rule: int
    kind: str
    passed: bool
    message: str
    inputs: dict
    waitable: bool
    overridable: bool
    two_person: bool
    overridden: bool = False

    @property
    def key(self) -> str:
        """How people name the rule: in 422 bodies and in overrides."""
        return rule_key(self.policy_set, self.kind)


def evaluate(
    *,
    release,
    environment: Environment,
    strategy: str,
    requester: User | None,
    at: datetime | None = None,
    change_ticket: str = "",
    deployment=None,
    policy_sets=None,
) -> list[Result]:
    """Every rule of the policy sets that apply to the environment (or of `policy_sets`), checked against the
    deployment of `release` by `requester` at `at` (now)."""
    policy_sets = policy_sets if policy_sets is not None else policy_sets_for(environment)
    if not policy_sets:
        return []
    ctx = rule_kinds.Context(
        release=release,
        artifacts=[ra.artifact for ra in release.release_artifacts.select_related("artifact").order_by("position")],
        environment=environment,
        strategy=strategy,
        requester=requester,
        at=at or timezone.now(),
        change_ticket=change_ticket,
        deployment=deployment,
    )
    results = []
    for policy_set in policy_sets:
        for rule in policy_set.rules.all():
            outcome = rule_kinds.KINDS[rule.kind].check(rule.params, ctx)
            results.append(
                Result(
                    policy_set=policy_set.slug,
                    rule=rule.pk,
                    kind=rule.kind,
                    passed=outcome.passed,
                    message=outcome.message,
                    inputs=outcome.inputs,
                    waitable=outcome.waitable and not outcome.passed,
                    overridable=rule.overridable,
                    two_person=rule.two_person,
                )
            )
    return results


def as_data(results: list[Result]) -> list[dict]:
    return [asdict(result) for result in results]


def check_creation(
    *,
    release,
    environment: Environment,
    strategy: str,
    requester: User | None,
    at: datetime,
    change_ticket: str = "",
    override_rules=(),
) -> list[dict]:
    """The policies' verdict on a deployment about to be created (deployments.services.deployment_create):
    raises PolicyViolation (422) naming the failed rules that waiting cannot cure, but for those in
    `override_rules` (which deployment_create then records through policy_override, which checks them); returns
    every result to store with the deployment (failures that time may cure make it wait when it would start)."""
    results = evaluate(
        release=release,
        environment=environment,
        strategy=strategy,
        requester=requester,
        at=at,
        change_ticket=change_ticket,
    )
    hard = [r for r in results if not r.passed and not r.waitable and r.key not in override_rules]
    if hard:
        raise PolicyViolation(
            " ".join(r.message for r in hard),
            rules=[r.key for r in hard],
            results=as_data(hard),
        )
    return as_data(results)


def _mark_overridden(results: list[Result], overrides) -> None:
    confirmed = {key for override in overrides if override.effective for key in override.rules}
    for result in results:
        result.overridden = not result.passed and result.overridable and result.key in confirmed


def check_start(deployment) -> tuple[list[dict], str, bool]:
    """The policies' verdict on a deployment about to start: (results, why it may not start, whether waiting can
    help). An empty reason lets it start. Rules overridden for it (and confirmed, for two-person rules) do not
    hold it; an override waiting for its second person does, until it is confirmed."""
    results = evaluate(
        release=deployment.release,
        environment=deployment.environment,
        strategy=deployment.strategy,
        requester=deployment.created_by,
        at=timezone.now(),
        change_ticket=deployment.change_ticket,
        deployment=deployment,
    )
    if not results:
        return [], "", True
    overrides = list(deployment.policy_overrides.all())
    _mark_overridden(results, overrides)
    failed = [r for r in results if not r.passed and not r.overridden]
    pending = {key for override in overrides if not override.effective for key in override.rules}
    reasons = [r.message for r in failed]
    unconfirmed = sorted({r.key for r in failed} & pending)
    if unconfirmed:
        reasons.append(
            f"The override of {', '.join(unconfirmed)} waits for a second person who manages "
            f"{deployment.environment.name} to confirm it."
        )
    waiting_helps = all(r.waitable or r.key in pending for r in failed)
    held = f"{'Held' if waiting_helps else 'Refused'} by policy: {' '.join(reasons)}" if reasons else ""
    return as_data(results), held, waiting_helps


# --- Overrides -------------------------------------------------------------------------------------------

NOT_STARTED = (DeploymentStatus.PENDING_APPROVAL, DeploymentStatus.SCHEDULED, DeploymentStatus.QUEUED)


def _override_checks(actor: User | None, environment: Environment, rules: list[str], justification: str) -> bool:
    """Whether someone may override `rules` (names `set/kind`) on the environment with this justification:
    raises PermissionDenied (no `manage`), ValidationFailed (no justification, a rule that does not apply or
    cannot be overridden); returns whether a second person must confirm it."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    applicable: dict[str, list[Rule]] = {}
    for policy_set in policy_sets_for(environment):
        for rule in policy_set.rules.all():
            applicable.setdefault(rule_key(policy_set.slug, rule.kind), []).append(rule)
    errors: dict[str, list[str]] = {}
    if not justification.strip():
        errors["justification"] = ["Say why these rules may be set aside: it is recorded and sent to the owners."]
    if not rules:
        errors["rules"] = ["Name the rules to override, as policy-set/kind."]
    unknown = [key for key in rules if key not in applicable]
    fixed = [key for key in rules if key in applicable and not all(r.overridable for r in applicable[key])]
    if unknown:
        errors.setdefault("rules", []).append(f"No rule {', '.join(unknown)} applies to {environment.name}.")
    if fixed:
        errors.setdefault("rules", []).append(f"{', '.join(fixed)} cannot be overridden.")
    if errors:
        raise ValidationFailed(" ".join(m for messages in errors.values() for m in messages), fields=errors)
    return any(rule.two_person for key in rules for rule in applicable[key])


def _record_override(deployment, override: PolicyOverride, verb: str, actor: User | None) -> None:
    """Record what an override changed: the stored results, the audit trail, the owners told, and a start."""
    from apps.deployments.services import start_next_queued  # deployments call the policies, not the reverse
    from apps.notifications.services import notify

    environment = deployment.environment
    if override.effective:
        for result in deployment.policy_results:
            if (
                not result["passed"]
                and result["overridable"]
                and rule_key(result["policy_set"], result["kind"]) in override.rules
            ):
                result["overridden"] = True
        deployment.save(update_fields=["policy_results", "updated_at"])
    who = actor.username if actor else "the system"
    rules = ", ".join(override.rules)
    audit_record(
        verb=verb,
        target=deployment,
        actor=actor,
        summary=f"{rules} of {deployment} overridden by {who}",
        details={
            "override": override.pk,
            "rules": override.rules,
            "justification": override.justification,
            "needs_confirmation": override.needs_confirmation,
            "confirmed_by": override.confirmed_by.username if override.confirmed_by else None,
        },
    )
    state = "in force" if override.effective else "waiting for a second person to confirm it"
    notify(
        "policy.overridden",
        environment=environment,
        deployment=deployment,
        subject=f"Policy override on deployment #{deployment.pk} to {environment.name}: {rules}",
        body=f"{who}: {override.justification} ({state})",
        url=reverse("deployments:detail", args=[deployment.pk]),
        recipients=User.objects.filter(groups__team=environment.owner_team_id, is_active=True),
        data={"deployment": deployment.pk, "rules": override.rules, "effective": override.effective},
    )
    if override.effective and deployment.status == DeploymentStatus.QUEUED:
        start_next_queued(environment.pk)


def _locked_unstarted(deployment):
    from apps.deployments.models import Deployment

    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("environment", "release")
        .get(pk=deployment.pk)
    )
    if deployment.status not in NOT_STARTED:
        raise InvalidTransition(f"{deployment} has started already: policies are checked before a start.")
    return deployment


def policy_override(*, actor: User | None, deployment, rules: list[str], justification: str) -> PolicyOverride:
    """Override failed (or failing) rules of one deployment that has not started: `manage` on its environment and
    a justification; audited; the environment's owners are told. A two-person rule among them makes the override
    wait for policy_override_confirm by someone else. Raises PermissionDenied, ValidationFailed,
    InvalidTransition (started already)."""
    rules = list(dict.fromkeys(rules))
    with transaction.atomic():
        deployment = _locked_unstarted(deployment)
        needs_confirmation = _override_checks(actor, deployment.environment, rules, justification)
        override = PolicyOverride.objects.create(
            deployment=deployment,
            rules=rules,
            justification=justification.strip(),
            requested_by=actor,
            needs_confirmation=needs_confirmation,
        )
        verb = "policy.override_requested" if needs_confirmation else "policy.overridden"
        _record_override(deployment, override, verb, actor)
    return override


def policy_override_confirm(*, actor: User, override: PolicyOverride) -> PolicyOverride:
    """The second person's confirmation of a two-person override: `manage` on the environment, not the person who
    asked for it. Raises PermissionDenied, Conflict (confirmed already), InvalidTransition (started already)."""
    with transaction.atomic():
        override = PolicyOverride.objects.select_for_update().get(pk=override.pk)
        ensure_can(actor, "manage", override.deployment.environment)
        deployment = _locked_unstarted(override.deployment)
        if actor.pk == override.requested_by_id:
            raise PermissionDenied("You asked for this override: someone else who manages the environment confirms it.")
        if override.effective:
            raise Conflict("This override is in force already.")
        override.confirmed_by, override.confirmed_at = actor, timezone.now()
        override.save(update_fields=["confirmed_by", "confirmed_at"])
        _record_override(deployment, override, "policy.override_confirmed", actor)
    return override
