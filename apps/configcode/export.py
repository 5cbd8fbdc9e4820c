"""Configuration as code: the configuration a user may view, as one YAML document (a pure read).

The document lists environments (with their targets, variables and, for a pull-mode environment, its
repository), deployment templates, lifecycles, approval policies, policy sets and freeze windows, each under
its natural key (slug, name), sorted, so two exports of the same configuration are byte-identical.
`services.config_import` reads it back.

A lifecycle, policy set or freeze window is exported only when every environment it names is visible to
the user: a partial one would lose environments when imported again.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.db.models import Prefetch

from apps.deployments.models import DeploymentTemplate, TemplateVersion
from apps.deployments.selectors import templates_visible_to
from apps.environments.models import Environment, Lifecycle, LifecycleStage, Variable
from apps.environments.selectors import environments_visible_to
from apps.gitops.models import EnvironmentRepository
from apps.policies.models import PolicySet, Rule
from apps.scheduling.models import FreezeWindow

FORMAT_VERSION = 1

ENVIRONMENT_FIELDS = (
    "name",
    "tier",
    "timezone",
    "description",
    "labels",
    "protected",
    "requires_booking",
    "booking_min_minutes",
    "booking_max_minutes",
    "booking_horizon_days",
    "default_strategy",
    "default_strategy_options",
    "traffic_hook",
    "traffic_weights",
)
TARGET_FIELDS = ("address", "slot", "path", "health_check_url", "labels", "attributes")
# A pull-mode environment's repository (apps.gitops), every field; the manifest template last: it is the long one.
REPOSITORY_FIELDS = (
    "url",
    "branch",
    "path",
    "mode",
    "provider",
    "api_url",
    "project",
    "credential_variable",
    "ssh_known_hosts",
    "api_token_variable",
    "webhook_secret_variable",
    "health_url",
    "sync_timeout",
    "poll_interval",
    "manifest_template",
)


def canonical(value: Any) -> Any:
    """Free-form JSON (labels, attributes, parameters) with its mappings' keys sorted: databases differ in the
    order they return them (PostgreSQL's jsonb sorts, SQLite keeps the written order)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def visible_environments(user) -> list[Environment]:
    """Every environment for the system (`user=None`), else those the user may view."""
    qs = Environment.objects.all() if user is None else environments_visible_to(user)
    return list(qs.select_related("owner_team", "default_template").order_by("slug"))


def _environment(environment: Environment, *, include_secrets: bool) -> dict:
    entry = {"slug": environment.slug, "owner_team": environment.owner_team.slug}
    entry.update({field: canonical(getattr(environment, field)) for field in ENVIRONMENT_FIELDS})
    entry["default_template"] = environment.default_template.slug if environment.default_template_id else None
    entry["targets"] = [
        {"name": target.name, **{field: canonical(getattr(target, field)) for field in TARGET_FIELDS}}
        for target in sorted(environment.targets.all(), key=lambda t: t.name)
    ]
    entry["variables"] = [
        _variable(variable, include_secrets=include_secrets)
        for variable in sorted(environment.variables.all(), key=variable_key)
    ]
    repository = getattr(environment, "repository", None)  # select_related: None when in push mode
    if repository is not None:
        entry["repository"] = repository_data(repository)
    return entry


def repository_data(repository: EnvironmentRepository) -> dict:
    """The environment repository's settings (credentials are the names of secret variables, never values)."""
    return {field: getattr(repository, field) for field in REPOSITORY_FIELDS}


def variable_key(variable: Variable) -> tuple[str, str]:
    return (variable.target.name if variable.target_id else "", variable.name)


def _variable(variable: Variable, *, include_secrets: bool) -> dict:
    """A variable; a secret without its value, or with its ciphertext as stored (`encrypted: true`), never the
    plaintext."""
    entry: dict[str, Any] = {"name": variable.name}
    if variable.target_id:
        entry["target"] = variable.target.name
    if not variable.secret:
        entry["value"] = variable.value
    else:
        entry["secret"] = True
        if include_secrets:
            entry["value"] = variable.value
            entry["encrypted"] = True
    return entry


def _template(template: DeploymentTemplate) -> dict:
    latest = next(iter(template.versions.all()), None)  # prefetched newest first
    return {
        "slug": template.slug,
        "name": template.name,
        "description": template.description,
        "steps": canonical(latest.steps if latest else []),
    }


def _lifecycle(lifecycle: Lifecycle) -> dict:
    return {
        "slug": lifecycle.slug,
        "name": lifecycle.name,
        "description": lifecycle.description,
        "stages": [
            {
                "name": stage.name,
                "automatic": stage.automatic,
                "environments": sorted(e.slug for e in stage.environments.all()),
            }
            for stage in lifecycle.stages.all()
        ],
    }


def _approval_policy(environment: Environment) -> dict:
    policy = environment.approval_policy
    return {
        "environment": environment.slug,
        "required_approvals": policy.required_approvals,
        "eligible_teams": sorted(team.slug for team in policy.eligible_teams.all()),
        "expires_after_seconds": int(policy.expires_after.total_seconds()) if policy.expires_after else None,
        "rejection_rejects": policy.rejection_rejects,
    }


def _policy_set(policy_set: PolicySet) -> dict:
    return {
        "slug": policy_set.slug,
        "name": policy_set.name,
        "description": policy_set.description,
        "active": policy_set.active,
        "all_environments": policy_set.all_environments,
        "tiers": sorted(policy_set.tiers),
        "environments": sorted(e.slug for e in policy_set.environments.all()),
        "rules": [
            {"kind": r.kind, "params": canonical(r.params), "overridable": r.overridable, "two_person": r.two_person}
            for r in policy_set.rules.all()
        ],
    }


def freeze_key(starts_at: str, title: str) -> str:
    """A freeze window has no slug: its start and title name it."""
    return f"{starts_at} {title}"


def _freeze(window: FreezeWindow) -> dict:
    return {
        "title": window.title,
        "reason": window.reason,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "rrule": window.rrule,
        "exdates": sorted(window.exdates),
        "timezone": window.timezone,
        "all_environments": window.all_environments,
        "environments": sorted(e.slug for e in window.environments.all()),
    }


def _within(environments, visible: set[int]) -> bool:
    return all(environment.pk in visible for environment in environments)


def config_document(*, user=None, include_secrets: bool = False) -> dict:
    """The configuration `user` may view (`None`: the system, everything) as plain data, sorted by natural key."""
    environments = visible_environments(user)
    visible = {environment.pk for environment in environments}
    details = (
        Environment.objects.filter(pk__in=visible)
        .select_related("owner_team", "default_template", "approval_policy", "repository")
        .prefetch_related(
            "targets",
            Prefetch("variables", queryset=Variable.objects.select_related("target")),
            "approval_policy__eligible_teams",
        )
        .order_by("slug")
    )
    if user is None:
        newest_first = TemplateVersion.objects.order_by("-number")
        templates = DeploymentTemplate.objects.prefetch_related(Prefetch("versions", queryset=newest_first))
    else:
        templates = templates_visible_to(user)  # its versions prefetched newest first
    templates = templates.order_by("slug")
    stages = LifecycleStage.objects.order_by("position").prefetch_related("environments")
    lifecycles = Lifecycle.objects.prefetch_related(Prefetch("stages", queryset=stages)).order_by("slug")
    policy_sets = PolicySet.objects.prefetch_related(
        "environments", Prefetch("rules", queryset=Rule.objects.order_by("position"))
    ).order_by("slug")
    freezes = (
        FreezeWindow.objects.filter(active=True, ends_at__isnull=False)  # locks are state, not configuration
        .prefetch_related("environments")
        .order_by("starts_at", "title", "id")
    )
    return {
        "version": FORMAT_VERSION,
        "environments": [_environment(e, include_secrets=include_secrets) for e in details],
        "templates": [_template(template) for template in templates],
        "lifecycles": [
            _lifecycle(lifecycle)
            for lifecycle in lifecycles
            if all(_within(stage.environments.all(), visible) for stage in lifecycle.stages.all())
        ],
        "approval_policies": [_approval_policy(e) for e in details if hasattr(e, "approval_policy")],
        "policy_sets": [_policy_set(s) for s in policy_sets if _within(s.environments.all(), visible)],
        "freezes": [_freeze(window) for window in freezes if _within(window.environments.all(), visible)],
    }


class _Dumper(yaml.SafeDumper):
    """Writes equal values out in full: the import refuses anchors and aliases."""

    def ignore_aliases(self, data) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Text of several lines (a manifest template) as a literal block, readable and diffable as it is written;
    the emitter falls back to a quoted scalar where a block cannot hold the text exactly."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def dump(document: dict) -> str:
    """YAML text in the document's own key order (plain types only)."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )


def config_export(*, user=None, include_secrets: bool = False) -> str:
    """The YAML export of what `user` may view. `include_secrets` adds secrets' ciphertexts (never plaintext);
    callers decide who may ask for it (the API: superusers only)."""
    return dump(config_document(user=user, include_secrets=include_secrets))
