"""Policy sets: creating them (with their rules, validated per kind) and evaluating the rules that apply to a
deployment of a release to an environment."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.changes import validated_save
from apps.core.errors import PermissionDenied, PolicyViolation, ValidationFailed
from apps.core.permissions import ensure_can
from apps.environments.choices import Tier
from apps.environments.models import Environment

from . import rules as rule_kinds
from .models import PolicySet, Rule

ADD_PERMISSION = "policies.add_policyset"
RULE_FIELDS = {"kind", "params", "overridable", "two_person"}


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
    if actor is not None and not actor.has_perm(ADD_PERMISSION):
        raise PermissionDenied("You may not create policy sets.")
    for environment in environments:
        if actor is not None:
            ensure_can(actor, "manage", environment)
    errors = _rules_errors(rules)
    unknown = sorted(set(tiers) - set(Tier.values))
    if unknown:
        errors["tiers"] = [f"Unknown tier(s) {', '.join(unknown)}; known: {', '.join(Tier.values)}."]
    if not (environments or tiers or all_environments):
        errors["environments"] = ["Attach it to environments, tiers or all environments."]
    if errors:
        raise ValidationFailed(fields=errors)
    policy_set = PolicySet(
        slug=slug, name=name, description=description, tiers=sorted(set(tiers)), all_environments=all_environments
    )
    with transaction.atomic():
        validated_save(policy_set, conflict=f"A policy set with slug {slug!r} exists already.")
        policy_set.environments.set(environments)
        Rule.objects.bulk_create(
            Rule(
                policy_set=policy_set,
                position=position,
                kind=rule["kind"],
                params=rule.get("params", {}),
                overridable=rule.get("overridable", True),
                two_person=rule.get("two_person", False),
            )
            for position, rule in enumerate(rules)
        )
        audit_record(
            verb="policy_set.created",
            target=policy_set,
            actor=actor,
            details={
                "rules": [{"kind": r["kind"], "params": r.get("params", {})} for r in rules],
                "environments": sorted(e.slug for e in environments),
                "tiers": policy_set.tiers,
                "all_environments": all_environments,
            },
        )
    return policy_set


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
    *, release, environment: Environment, strategy: str, requester: User | None, at: datetime, change_ticket: str = ""
) -> list[dict]:
    """The policies' verdict on a deployment about to be created (deployments.services.deployment_create):
    raises PolicyViolation (422) naming the failed rules that waiting cannot cure; returns every result to
    store with the deployment (failures that time may cure make it wait when it would start)."""
    results = evaluate(
        release=release,
        environment=environment,
        strategy=strategy,
        requester=requester,
        at=at,
        change_ticket=change_ticket,
    )
    hard = [r for r in results if not r.passed and not r.waitable]
    if hard:
        raise PolicyViolation(
            " ".join(r.message for r in hard),
            rules=[f"{r.policy_set}/{r.kind}" for r in hard],
            results=as_data(hard),
        )
    return as_data(results)


def check_start(deployment) -> tuple[list[dict], str, bool]:
    """The policies' verdict on a deployment about to start: (results, why it may not start, whether waiting can
    help). An empty reason lets it start."""
    results = evaluate(
        release=deployment.release,
        environment=deployment.environment,
        strategy=deployment.strategy,
        requester=deployment.created_by,
        at=timezone.now(),
        change_ticket=deployment.change_ticket,
        deployment=deployment,
    )
    failed = [r for r in results if not r.passed]
    reason = " ".join(r.message for r in failed)
    return as_data(results), (f"Held by policy: {reason}" if reason else ""), all(r.waitable for r in failed)
