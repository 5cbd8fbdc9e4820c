"""Importing configuration as code (the YAML document of `export.py`).

`config_import` reads the whole document first and names every problem by file and path
(`config.yaml:environments[2].targets[0].address`); then it compares each entry with what the actor may view and
makes a plan: create, update (each field old → new) or unchanged. The changes are made in one transaction through
each app's own services, so permissions, validation, history and audit are theirs. A dry run makes them too and
rolls them back, so it reports the errors an import would meet, and changes nothing.

What an import never does: delete anything (an object missing from the file stays), change a field the file
leaves out, or reveal a secret (secrets are compared by fingerprint, shown as "(hidden)").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from apps.accounts.models import Team, User
from apps.approvals.services import policy_set as approval_policy_set
from apps.audit.services import audit_record
from apps.core import crypto
from apps.core.errors import ReleaseHubError, ValidationFailed
from apps.deployments import plans
from apps.deployments.models import DeploymentTemplate
from apps.deployments.services import template_create, template_update
from apps.environments import services as environments
from apps.environments.choices import Slot, Tier
from apps.environments.models import Environment, Lifecycle, Target, Variable
from apps.gitops import services as gitops
from apps.gitops.models import EnvironmentRepository, Mode
from apps.gitops.providers import PROVIDERS
from apps.policies import rules as rule_kinds
from apps.policies.models import PolicySet
from apps.policies.services import RULE_FIELDS, policy_set_create, policy_set_update
from apps.scheduling.services import freeze_create

from .export import (
    ENVIRONMENT_FIELDS,
    FORMAT_VERSION,
    REPOSITORY_FIELDS,
    TARGET_FIELDS,
    canonical,
    config_document,
    freeze_key,
)

CREATE, UPDATE, UNCHANGED, SKIPPED = "create", "update", "unchanged", "skipped"
HIDDEN = "(hidden)"


@dataclass
class Change:
    """One entry of the file against what exists: `fields` holds {field: [old, new]} (old is None on create)."""

    kind: str  # environment, target, variable, repository, template, lifecycle, approval_policy, policy_set, freeze
    key: str  # its natural key: a slug, "environment/target", a freeze's start and title
    path: str  # where it is in the file: "environments[0].targets[1]"
    action: str  # create, update, unchanged, or skipped (a change no service can make)
    fields: dict[str, list] = field(default_factory=dict)
    note: str = ""
    apply: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    def as_data(self) -> dict:
        return {
            "kind": self.kind,
            "key": self.key,
            "path": self.path,
            "action": self.action,
            "fields": self.fields,
            "note": self.note,
        }


@dataclass
class Plan:
    """What an import does (or, on a dry run, would do)."""

    dry_run: bool
    changes: list[Change]

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys((CREATE, UPDATE, UNCHANGED, SKIPPED), 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def changed(self) -> bool:
        return any(change.action in (CREATE, UPDATE) for change in self.changes)

    def as_data(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "changes": [change.as_data() for change in self.changes],
            "summary": self.summary,
        }

    def text(self) -> str:
        """The plan as people read it: one line per change that is not `unchanged`, its fields below."""
        signs = {CREATE: "+", UPDATE: "~", SKIPPED: "!"}
        lines = []
        for change in self.changes:
            if change.action == UNCHANGED:
                continue
            lines.append(f"{signs[change.action]} {change.kind} {change.key}  ({change.path})")
            if change.action == UPDATE:
                lines.extend(f"    {name}: {old!r} → {new!r}" for name, (old, new) in change.fields.items())
            if change.note:
                lines.append(f"    {change.note}")
        counts = self.summary
        verb = "would be" if self.dry_run else "were"
        lines.append(
            f"{counts[CREATE]} {verb} created, {counts[UPDATE]} {verb} updated, {counts[UNCHANGED]} unchanged"
            + (f", {counts[SKIPPED]} skipped" if counts[SKIPPED] else "")
            + "."
        )
        return "\n".join(lines)


# --- Reading and checking the document ---------------------------------------------------------------


def _text(value) -> str | None:
    return None if isinstance(value, str) else "A string (quote numbers and yes/no)."


def _flag(value) -> str | None:
    return None if isinstance(value, bool) else "true or false."


MAX_COUNT = 2**31 - 1


def _count(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return None
    return f"A whole number from 0 to {MAX_COUNT}."


def _mapping(value) -> str | None:
    return None if isinstance(value, dict) and all(isinstance(k, str) for k in value) else "A mapping."


def _texts(value) -> str | None:
    return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else "A list of strings."


def _entries(value) -> str | None:
    return None if isinstance(value, list) else "A list."


def _when(value) -> str | None:
    return None if _datetime(value) is not None else "A date and time with its offset, e.g. 2025-12-24T18:00:00+01:00."


def _nullable(check):
    return lambda value: None if value is None else check(value)


def _one_of(values):
    return lambda value: None if value in values else f"One of {', '.join(values)}."


def _datetime(value) -> datetime | None:
    """An aware datetime in UTC from YAML's timestamp or an ISO string; None when it is neither or has no offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 at a positive offset
        return None


ENVIRONMENT_SPEC = {
    "slug": _text,
    "owner_team": _text,
    "name": _text,
    "tier": _one_of(Tier.values),
    "timezone": _text,
    "description": _text,
    "labels": _mapping,
    "protected": _flag,
    "requires_booking": _flag,
    "booking_min_minutes": _count,
    "booking_max_minutes": _count,
    "booking_horizon_days": _count,
    "default_strategy": _text,
    "default_strategy_options": _mapping,
    "traffic_hook": _mapping,
    "traffic_weights": _flag,
    "default_template": _nullable(_text),
    "targets": _entries,
    "variables": _entries,
    "repository": _mapping,
}
TARGET_SPEC = {
    "name": _text,
    "address": _text,
    "slot": _one_of(Slot.values),
    "path": _text,
    "health_check_url": _text,
    "labels": _mapping,
    "attributes": _mapping,
}
REPOSITORY_SPEC = {
    "url": _text,
    "branch": _text,
    "path": _text,
    "mode": _one_of(Mode.values),
    "provider": _one_of(["", *PROVIDERS]),
    "api_url": _text,
    "project": _text,
    "credential_variable": _text,
    "ssh_known_hosts": _text,
    "api_token_variable": _text,
    "webhook_secret_variable": _text,
    "health_url": _text,
    "sync_timeout": _count,
    "poll_interval": _count,
    "manifest_template": _text,
}
VARIABLE_SPEC = {"name": _text, "target": _nullable(_text), "value": _text, "secret": _flag, "encrypted": _flag}
TEMPLATE_SPEC = {"slug": _text, "name": _text, "description": _text, "steps": _entries}
LIFECYCLE_SPEC = {"slug": _text, "name": _text, "description": _text, "stages": _entries}
STAGE_SPEC = {"name": _text, "automatic": _flag, "environments": _texts}
APPROVAL_SPEC = {
    "environment": _text,
    "required_approvals": _count,
    "eligible_teams": _texts,
    "expires_after_seconds": _nullable(_count),
    "rejection_rejects": _flag,
}
POLICY_SET_SPEC = {
    "slug": _text,
    "name": _text,
    "description": _text,
    "active": _flag,
    "all_environments": _flag,
    "tiers": _texts,
    "environments": _texts,
    "rules": _entries,
}
FREEZE_SPEC = {
    "title": _text,
    "reason": _text,
    "starts_at": _when,
    "ends_at": _when,
    "rrule": _text,
    "exdates": _texts,
    "timezone": _text,
    "all_environments": _flag,
    "environments": _texts,
}
SECTIONS = ("environments", "templates", "lifecycles", "approval_policies", "policy_sets", "freezes")


class _Loader(yaml.SafeLoader):
    """YAML without anchors and aliases: configuration never needs them, and they allow documents that refer to
    themselves or grow exponentially when read."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", mark)
        return super().compose_node(parent, index)


def _has_nul(document) -> bool:
    """Whether any key or value holds a NUL character, which PostgreSQL's text and jsonb refuse."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _parse(text: str, filename: str) -> dict:
    """The document as plain data; ValidationFailed naming the line of a syntax error."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        message = f"Not valid YAML at {where}: {exc.problem or exc.context}."
        raise ValidationFailed(f"{filename}: {message}", fields={filename: [message]}) from exc
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ValidationFailed(f"{filename}: not valid YAML.", fields={filename: ["Not valid YAML."]}) from exc
    if not isinstance(document, dict):
        raise ValidationFailed(fields={filename: ["The document is a mapping with version and sections."]})
    if _has_nul(document):
        raise ValidationFailed(fields={filename: ["NUL characters are not accepted."]})
    if document.get("version") != FORMAT_VERSION:
        raise ValidationFailed(fields={f"{filename}:version": [f"Give version: {FORMAT_VERSION}."]})
    unknown = sorted(str(key) for key in document if key not in (*SECTIONS, "version"))
    if unknown:
        raise ValidationFailed(
            fields={f"{filename}:{key}": [f"Unknown section; known: {', '.join(SECTIONS)}."] for key in unknown}
        )
    return document


class _Errors(dict):
    """{"<file>:<path>": [messages]}, raised all at once."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.filename = filename

    def add(self, path: str, message: str) -> None:
        self.setdefault(f"{self.filename}:{path}", []).append(message)

    def raise_any(self) -> None:
        if self:
            raise ValidationFailed(f"{self.filename} is not valid: {len(self)} problem(s).", fields=dict(self))


def _items(document: dict, section: str, errors: _Errors, path: str = "") -> list[tuple[str, dict]]:
    """The entries of a list (`path` + `section`) that are mappings, with their paths."""
    where = f"{path}.{section}" if path else section
    value = document.get(section) or []
    if not isinstance(value, list):
        errors.add(where, "A list.")
        return []
    items = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            items.append((f"{where}[{index}]", item))
        else:
            errors.add(f"{where}[{index}]", "A mapping.")
    return items


def _check(entry: dict, path: str, spec: dict, errors: _Errors, required: tuple[str, ...]) -> bool:
    """Check each field's type; report unknown and missing ones. True when the entry can be planned."""
    ok = True
    for name in entry:
        if name not in spec:
            errors.add(f"{path}.{name}", f"Unknown field; known: {', '.join(spec)}.")
        elif (problem := spec[name](entry[name])) is not None:
            errors.add(f"{path}.{name}", problem)
            ok = False
    for name in required:
        if name not in entry:
            errors.add(f"{path}.{name}", "This field is required.")
            ok = False
    return ok


def _unique(seen: set, key, path: str, errors: _Errors, what: str) -> bool:
    if key in seen:
        errors.add(path, f"{what} is in the file twice.")
        return False
    seen.add(key)
    return True


# The step validator counts steps from 1 (as pages show them); paths in a file count from 0.
_STEP_INDEX = re.compile(r"^steps\[(\d+)\]")


def _step_path(name: str) -> str:
    return _STEP_INDEX.sub(lambda m: f"steps[{int(m.group(1)) - 1}]", name)


# --- Planning --------------------------------------------------------------------------------------------


def _given(entry: dict, names) -> dict:
    return {name: canonical(entry[name]) for name in names if name in entry}


def _diff(current: dict | None, wanted: dict) -> dict[str, list]:
    """{field: [old, new]} for the fields of `wanted` that differ from `current` (all of them on create)."""
    if current is None:
        return {name: [None, value] for name, value in wanted.items()}
    return {name: [current.get(name), value] for name, value in wanted.items() if current.get(name) != value}


class _Planner:
    """Builds the plan of one document for one actor; `current` is what the actor may view (the export's data)."""

    def __init__(self, *, actor: User | None, document: dict, filename: str) -> None:
        self.actor = actor
        self.document = document
        self.errors = _Errors(filename)
        self.changes: list[Change] = []
        current = config_document(user=actor)
        self.environments = {e["slug"]: e for e in current["environments"]}
        self.templates = {t["slug"]: t for t in current["templates"]}
        self.lifecycles = {lc["slug"]: lc for lc in current["lifecycles"]}
        self.approval_policies = {p["environment"]: p for p in current["approval_policies"]}
        self.policy_sets = {s["slug"]: s for s in current["policy_sets"]}
        self.freezes = {freeze_key(f["starts_at"], f["title"]): f for f in current["freezes"]}
        self.teams = set(Team.objects.values_list("slug", flat=True))
        self.fingerprints = {
            (slug, target or "", name): fingerprint
            for slug, target, name, fingerprint in Variable.objects.filter(
                secret=True, environment__slug__in=self.environments
            ).values_list("environment__slug", "target__name", "name", "fingerprint")
        }
        self.known_environments = set(self.environments) | {
            entry["slug"]
            for _, entry in _items(document, "environments", _Errors(filename))
            if isinstance(entry.get("slug"), str)
        }

    def plan(self) -> list[Change]:
        self._templates()
        self._environments()
        self._lifecycles()
        self._approval_policies()
        self._policy_sets()
        self._freezes()
        self.errors.raise_any()
        return self.changes

    def _add(self, kind: str, key: str, path: str, current: dict | None, wanted: dict, create, update) -> None:
        """Record the change of one entry; `create()` / `update(diff)` make it through a service."""
        diff = _diff(current, wanted)
        if current is None:
            self.changes.append(Change(kind, key, path, CREATE, diff, apply=create))
        elif diff:
            self.changes.append(Change(kind, key, path, UPDATE, diff, apply=lambda: update(diff)))
        else:
            self.changes.append(Change(kind, key, path, UNCHANGED))

    def _environment_refs(self, slugs: list[str], path: str) -> None:
        for index, slug in enumerate(slugs):
            if slug not in self.known_environments:
                self.errors.add(f"{path}[{index}]", f"Unknown environment {slug!r}.")

    def _team_refs(self, slugs: list[str], path: str) -> None:
        for index, slug in enumerate(slugs):
            if slug not in self.teams:
                self.errors.add(f"{path}[{index}]", f"Unknown team {slug!r}.")

    # Templates -------------------------------------------------------------------------------------------

    def _templates(self) -> None:
        seen: set = set()
        for path, entry in _items(self.document, "templates", self.errors):
            if not _check(entry, path, TEMPLATE_SPEC, self.errors, ("slug",)):
                continue
            slug = entry["slug"]
            if not _unique(seen, slug, f"{path}.slug", self.errors, f"Template {slug!r}"):
                continue
            current = self.templates.get(slug)
            if current is None:
                for name in ("name", "steps"):
                    if name not in entry:
                        self.errors.add(f"{path}.{name}", "Needed to create the template.")
            wanted = _given(entry, ("name", "description"))
            if "steps" in entry:
                try:
                    wanted["steps"] = canonical(plans.validate_steps(entry["steps"]))
                except ValidationFailed as exc:
                    for name, messages in (exc.fields or {"steps": [exc.detail]}).items():
                        for message in messages:
                            self.errors.add(f"{path}.{_step_path(name)}", message)
                    continue
            self._add(
                "template",
                slug,
                path,
                current,
                wanted,
                create=lambda slug=slug, wanted=wanted: template_create(actor=self.actor, slug=slug, **wanted),
                update=lambda diff, slug=slug: template_update(
                    actor=self.actor,
                    template=DeploymentTemplate.objects.get(slug=slug),
                    **{name: new for name, (_, new) in diff.items()},
                ),
            )

    # Environments, their targets and variables ------------------------------------------------------------

    def _environments(self) -> None:
        seen: set = set()
        known_templates = set(self.templates) | {
            entry.get("slug") for _, entry in _items(self.document, "templates", _Errors(""))
        }
        for path, entry in _items(self.document, "environments", self.errors):
            if not _check(entry, path, ENVIRONMENT_SPEC, self.errors, ("slug",)):
                continue
            slug = entry["slug"]
            if not _unique(seen, slug, f"{path}.slug", self.errors, f"Environment {slug!r}"):
                continue
            current = self.environments.get(slug)
            if current is None:
                for name in ("name", "owner_team"):
                    if name not in entry:
                        self.errors.add(f"{path}.{name}", "Needed to create the environment.")
            if "owner_team" in entry and entry["owner_team"] not in self.teams:
                self.errors.add(f"{path}.owner_team", f"Unknown team {entry['owner_team']!r}.")
            if entry.get("default_template") is not None and entry["default_template"] not in known_templates:
                self.errors.add(f"{path}.default_template", f"Unknown template {entry['default_template']!r}.")
            wanted = _given(entry, ("owner_team", *ENVIRONMENT_FIELDS, "default_template"))
            self._add(
                "environment",
                slug,
                path,
                current,
                wanted,
                create=lambda slug=slug, wanted=wanted: environments.environment_create(
                    actor=self.actor, slug=slug, **_environment_objects(wanted)
                ),
                update=lambda diff, slug=slug: environments.environment_update(
                    actor=self.actor,
                    environment=Environment.objects.get(slug=slug),
                    **_environment_objects({name: new for name, (_, new) in diff.items()}),
                ),
            )
            targets = self._targets(slug, path, entry, current)
            self._variables(slug, path, entry, current, targets)
            if "repository" in entry:
                self._repository(slug, f"{path}.repository", entry["repository"], current)

    def _targets(self, environment: str, path: str, entry: dict, current_environment: dict | None) -> set[str]:
        """Plan the environment's targets; returns the names of its targets once imported."""
        current = {t["name"]: t for t in (current_environment or {}).get("targets", [])}
        seen: set = set()
        for target_path, target in _items(entry, "targets", self.errors, path):
            if not _check(target, target_path, TARGET_SPEC, self.errors, ("name",)):
                continue
            name = target["name"]
            if not _unique(seen, name, f"{target_path}.name", self.errors, f"Target {name!r}"):
                continue
            wanted = _given(target, TARGET_FIELDS)
            self._add(
                "target",
                f"{environment}/{name}",
                target_path,
                current.get(name),
                wanted,
                create=lambda environment=environment, name=name, wanted=wanted: environments.target_create(
                    actor=self.actor, environment=Environment.objects.get(slug=environment), name=name, **wanted
                ),
                update=lambda diff, environment=environment, name=name: environments.target_update(
                    actor=self.actor,
                    target=Target.objects.get(environment__slug=environment, name=name),
                    **{field: new for field, (_, new) in diff.items()},
                ),
            )
        return set(current) | seen

    def _variables(self, environment: str, path: str, entry: dict, current_environment, targets: set[str]) -> None:
        current = {(v.get("target", ""), v["name"]): v for v in (current_environment or {}).get("variables", [])}
        seen: set = set()
        for variable_path, variable in _items(entry, "variables", self.errors, path):
            if not _check(variable, variable_path, VARIABLE_SPEC, self.errors, ("name",)):
                continue
            target, name = variable.get("target") or "", variable["name"]
            label = f"{name}@{target}" if target else name
            if not _unique(seen, (target, name), f"{variable_path}.name", self.errors, f"Variable {label}"):
                continue
            if target and target not in targets:
                self.errors.add(f"{variable_path}.target", f"No target {target!r} in {environment}.")
                continue
            existing = current.get((target, name))
            was_secret = bool(existing and existing.get("secret"))
            secret = variable.get("secret", was_secret) or variable.get("encrypted", False)
            value = variable.get("value")
            if variable.get("encrypted"):
                if value is None:
                    self.errors.add(f"{variable_path}.value", "An encrypted secret needs its ciphertext.")
                    continue
                try:
                    value = crypto.decrypt(value)
                except crypto.InvalidToken:
                    self.errors.add(f"{variable_path}.value", "Does not decrypt with this server's encryption key.")
                    continue
            if value is None and existing is None:
                self.errors.add(f"{variable_path}.value", "A secret needs a value." if secret else "Give a value.")
                continue
            if value is None and was_secret and not secret:
                self.errors.add(f"{variable_path}.value", "Give a value to make a secret plain.")
                continue
            self._variable(environment, target, name, variable_path, existing, secret, value)

    def _variable(self, environment, target, name, path, existing, secret: bool, value: str | None) -> None:
        """A variable's change; a secret's value is compared by fingerprint and shown as hidden."""
        key = f"{environment}/{target}/{name}" if target else f"{environment}/{name}"
        was_secret = bool(existing and existing.get("secret"))
        hidden = secret or was_secret
        diff: dict[str, list] = {}
        if existing is None:
            diff = {"value": [None, HIDDEN if secret else value], "secret": [None, secret]}
        else:
            if secret != was_secret:
                diff["secret"] = [was_secret, secret]
            if value is not None:
                if was_secret:
                    changed = crypto.fingerprint(value) != self.fingerprints.get((environment, target, name))
                else:
                    changed = value != existing.get("value")
                if changed:
                    diff["value"] = [HIDDEN, HIDDEN] if hidden else [existing.get("value"), value]
        if existing is not None and not diff:
            self.changes.append(Change("variable", key, path, UNCHANGED))
            return

        def create():
            env = Environment.objects.get(slug=environment)
            environments.variable_create(
                actor=self.actor,
                environment=env,
                name=name,
                value=value,
                secret=secret,
                target=env.targets.get(name=target) if target else None,
            )

        def update():
            environments.variable_update(
                actor=self.actor,
                variable=Variable.objects.get(
                    environment__slug=environment,
                    name=name,
                    **({"target__name": target} if target else {"target": None}),
                ),
                value=value if "value" in diff or "secret" in diff else None,
                secret=secret,
            )

        action = CREATE if existing is None else UPDATE
        self.changes.append(Change("variable", key, path, action, diff, apply=create if existing is None else update))

    def _repository(self, environment: str, path: str, entry: dict, current_environment: dict | None) -> None:
        """Plan a pull-mode environment's repository (after its variables: it names secret ones). The model's
        own checks run here, so every problem is reported at once; the service checks the secrets' names."""
        if not _check(entry, path, REPOSITORY_SPEC, self.errors, ()):
            return
        current = (current_environment or {}).get("repository")
        if current is None:
            for name in ("url", "path", "manifest_template"):
                if name not in entry:
                    self.errors.add(f"{path}.{name}", "Needed to create the repository.")
        wanted = _given(entry, REPOSITORY_FIELDS)
        repository = EnvironmentRepository(**{**(current or {}), **wanted})
        missing = {"url", "path", "manifest_template"} - set(wanted)  # reported above, or unchanged
        for check in (lambda: repository.clean_fields(exclude=["environment", *missing]), repository.clean):
            try:
                check()
            except ValidationError as exc:
                problems = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
                for name, messages in problems.items():
                    for message in messages:
                        self.errors.add(path if name == NON_FIELD_ERRORS else f"{path}.{name}", message)
        if "manifest_template" in wanted:
            for message in plans.template_syntax_errors(wanted["manifest_template"]):
                self.errors.add(f"{path}.manifest_template", message)
        self._add(
            "repository",
            environment,
            path,
            current,
            wanted,
            create=lambda environment=environment, wanted=wanted: gitops.repository_set(
                actor=self.actor, environment=Environment.objects.get(slug=environment), **wanted
            ),
            update=lambda diff, environment=environment: gitops.repository_set(
                actor=self.actor,
                environment=Environment.objects.get(slug=environment),
                **{name: new for name, (_, new) in diff.items()},
            ),
        )

    # Lifecycles --------------------------------------------------------------------------------------------

    def _lifecycles(self) -> None:
        seen: set = set()
        for path, entry in _items(self.document, "lifecycles", self.errors):
            if not _check(entry, path, LIFECYCLE_SPEC, self.errors, ("slug",)):
                continue
            slug = entry["slug"]
            if not _unique(seen, slug, f"{path}.slug", self.errors, f"Lifecycle {slug!r}"):
                continue
            current = self.lifecycles.get(slug)
            if current is None:
                for name in ("name", "stages"):
                    if name not in entry:
                        self.errors.add(f"{path}.{name}", "Needed to create the lifecycle.")
            wanted = _given(entry, ("name", "description"))
            if "stages" in entry:
                stages = []
                for stage_path, stage in _items(entry, "stages", self.errors, path):
                    if _check(stage, stage_path, STAGE_SPEC, self.errors, ("name", "environments")):
                        self._environment_refs(stage["environments"], f"{stage_path}.environments")
                        stages.append(
                            {
                                "name": stage["name"],
                                "automatic": stage.get("automatic", False),
                                "environments": sorted(stage["environments"]),
                            }
                        )
                wanted["stages"] = stages
            self._add(
                "lifecycle",
                slug,
                path,
                current,
                wanted,
                create=lambda slug=slug, wanted=wanted: environments.lifecycle_create(
                    actor=self.actor, slug=slug, **_lifecycle_objects(wanted)
                ),
                update=lambda diff, slug=slug: environments.lifecycle_update(
                    actor=self.actor,
                    lifecycle=Lifecycle.objects.get(slug=slug),
                    **_lifecycle_objects({name: new for name, (_, new) in diff.items()}),
                ),
            )

    # Approval policies -------------------------------------------------------------------------------------

    def _approval_policies(self) -> None:
        seen: set = set()
        for path, entry in _items(self.document, "approval_policies", self.errors):
            if not _check(entry, path, APPROVAL_SPEC, self.errors, ("environment",)):
                continue
            slug = entry["environment"]
            if not _unique(seen, slug, f"{path}.environment", self.errors, f"The policy of {slug!r}"):
                continue
            if slug not in self.known_environments:
                self.errors.add(f"{path}.environment", f"Unknown environment {slug!r}.")
            self._team_refs(entry.get("eligible_teams", []), f"{path}.eligible_teams")
            wanted = _given(entry, ("required_approvals", "expires_after_seconds", "rejection_rejects"))
            if "eligible_teams" in entry:
                wanted["eligible_teams"] = sorted(entry["eligible_teams"])
            current = self.approval_policies.get(slug)

            def apply(slug=slug, current=current, wanted=wanted):
                values = {
                    "required_approvals": 1,
                    "eligible_teams": [],
                    "expires_after_seconds": None,
                    "rejection_rejects": True,
                    **(current or {}),
                    **wanted,
                }
                seconds = values["expires_after_seconds"]
                approval_policy_set(
                    actor=self.actor,
                    environment=Environment.objects.get(slug=slug),
                    required_approvals=values["required_approvals"],
                    eligible_teams=list(Team.objects.filter(slug__in=values["eligible_teams"])),
                    expires_after=timedelta(seconds=seconds) if seconds is not None else None,
                    rejection_rejects=values["rejection_rejects"],
                )

            self._add("approval_policy", slug, path, current, wanted, create=apply, update=lambda diff, a=apply: a())

    # Policy sets -------------------------------------------------------------------------------------------

    def _policy_sets(self) -> None:
        seen: set = set()
        for path, entry in _items(self.document, "policy_sets", self.errors):
            if not _check(entry, path, POLICY_SET_SPEC, self.errors, ("slug",)):
                continue
            slug = entry["slug"]
            if not _unique(seen, slug, f"{path}.slug", self.errors, f"Policy set {slug!r}"):
                continue
            current = self.policy_sets.get(slug)
            if current is None:
                for name in ("name", "rules"):
                    if name not in entry:
                        self.errors.add(f"{path}.{name}", "Needed to create the policy set.")
            for index, tier in enumerate(entry.get("tiers", [])):
                if tier not in Tier.values:
                    known = ", ".join(Tier.values)
                    self.errors.add(f"{path}.tiers[{index}]", f"Unknown tier {tier!r}; known: {known}.")
            self._environment_refs(entry.get("environments", []), f"{path}.environments")
            wanted = _given(entry, ("name", "description", "active", "all_environments"))
            for name in ("tiers", "environments"):
                if name in entry:
                    wanted[name] = sorted(set(entry[name]))
            if "rules" in entry:
                wanted["rules"] = self._rules(entry, path)
            self._add(
                "policy_set",
                slug,
                path,
                current,
                wanted,
                create=lambda slug=slug, wanted=wanted: _policy_set_create(self.actor, slug, wanted),
                update=lambda diff, slug=slug: policy_set_update(
                    actor=self.actor,
                    policy_set=PolicySet.objects.get(slug=slug),
                    **_policy_set_objects({name: new for name, (_, new) in diff.items()}),
                ),
            )

    def _rules(self, entry: dict, path: str) -> list[dict]:
        """The rules with their defaults filled in (as the policies service stores them), each one checked."""
        rules = []
        for rule_path, rule in _items(entry, "rules", self.errors, path):
            unknown = set(rule) - RULE_FIELDS
            if unknown or not isinstance(rule.get("kind"), str):
                self.errors.add(rule_path, f"A rule has kind and params (and overridable, two_person); not {unknown}.")
                continue
            for name, messages in rule_kinds.params_errors(rule["kind"], rule.get("params", {})).items():
                for message in messages:
                    self.errors.add(f"{rule_path}.{name}", message)
            for name in ("overridable", "two_person"):
                if name in rule and (problem := _flag(rule[name])):
                    self.errors.add(f"{rule_path}.{name}", problem)
            rules.append(
                {
                    "kind": rule["kind"],
                    "params": canonical(rule.get("params", {})),
                    "overridable": rule.get("overridable", True),
                    "two_person": rule.get("two_person", False),
                }
            )
        return rules

    # Freeze windows ----------------------------------------------------------------------------------------

    def _freezes(self) -> None:
        seen: set = set()
        for path, entry in _items(self.document, "freezes", self.errors):
            if not _check(entry, path, FREEZE_SPEC, self.errors, ("title", "starts_at")):
                continue
            wanted = _given(entry, ("title", "reason", "rrule", "timezone", "all_environments"))
            for name in ("starts_at", "ends_at"):
                if name in entry:
                    wanted[name] = _datetime(entry[name]).isoformat()
            for name in ("exdates", "environments"):
                if name in entry:
                    wanted[name] = sorted(set(entry[name]))
            key = freeze_key(wanted["starts_at"], wanted["title"])
            if not _unique(seen, key, path, self.errors, f"Freeze {key!r}"):
                continue
            self._environment_refs(entry.get("environments", []), f"{path}.environments")
            current = self.freezes.get(key)
            if current is None:
                for name in ("reason", "ends_at"):
                    if name not in entry:
                        self.errors.add(f"{path}.{name}", "Needed to create the freeze window.")
            diff = _diff(current, wanted)
            if current is not None and diff:
                self.changes.append(
                    Change(
                        "freeze",
                        key,
                        path,
                        SKIPPED,
                        diff,
                        note="Freeze windows cannot be changed (there is no update service): lift it and import again.",
                    )
                )
                continue
            create = lambda w=wanted: _freeze_create(self.actor, w)  # noqa: E731
            self._add("freeze", key, path, current, wanted, create=create, update=None)


# --- From plain values to the objects services take ------------------------------------------------------


def _environment_objects(values: dict) -> dict:
    values = dict(values)
    if "owner_team" in values:
        values["owner_team"] = Team.objects.get(slug=values["owner_team"])
    if "default_template" in values:
        slug = values["default_template"]
        values["default_template"] = DeploymentTemplate.objects.get(slug=slug) if slug else None
    return values


def _lifecycle_objects(values: dict) -> dict:
    values = dict(values)
    if "stages" in values:
        values["stages"] = [
            {**stage, "environments": list(Environment.objects.filter(slug__in=stage["environments"]).order_by("slug"))}
            for stage in values["stages"]
        ]
    return values


def _policy_set_objects(values: dict) -> dict:
    values = dict(values)
    if "environments" in values:
        values["environments"] = list(Environment.objects.filter(slug__in=values["environments"]).order_by("slug"))
    return values


def _policy_set_create(actor: User | None, slug: str, wanted: dict) -> PolicySet:
    """policy_set_create makes active sets; an inactive one is switched off at once, in the same transaction."""
    values = _policy_set_objects(wanted)
    active = values.pop("active", True)
    policy_set = policy_set_create(actor=actor, slug=slug, **values)
    if not active:
        policy_set = policy_set_update(actor=actor, policy_set=policy_set, active=False)
    return policy_set


def _freeze_create(actor: User | None, wanted: dict):
    values = dict(wanted)
    environments_ = list(Environment.objects.filter(slug__in=values.pop("environments", [])).order_by("slug"))
    timezone_name = values.pop("timezone", "UTC")
    return freeze_create(
        actor=actor,
        environments=environments_,
        timezone_name=timezone_name,
        **{**values, "starts_at": _datetime(values["starts_at"]), "ends_at": _datetime(values["ends_at"])},
    )


# --- The service ------------------------------------------------------------------------------------------


def _located(exc: ReleaseHubError, where: str) -> ReleaseHubError:
    """The same error, its message and fields prefixed with the file and path of the entry that caused it."""
    fields = {f"{where}.{name}": messages for name, messages in (exc.fields or {}).items()} or {where: [exc.detail]}
    return type(exc)(f"{where}: {exc.detail}", fields=fields, **exc.extra)


def config_import(*, actor: User | None, text: str, filename: str = "config.yaml", dry_run: bool = True) -> Plan:
    """Plan the import of a configuration document and, unless `dry_run`, make it, in one transaction.

    Every change goes through its app's service as `actor` (None: the system), so their permissions,
    validation, history and audit apply; one `config.imported` audit event records the counts when anything
    changed. Importing the same document again changes nothing. A dry run makes the changes and rolls them
    back, so it reports what the import would fail on.

    Raises ValidationFailed (fields named `<filename>:<path>`), and the services' PermissionDenied, NotFound
    and Conflict, their messages prefixed with the path of the entry.
    """
    document = _parse(text, filename)
    changes = _Planner(actor=actor, document=document, filename=filename).plan()
    plan = Plan(dry_run=dry_run, changes=changes)
    if not plan.changed:
        return plan
    with transaction.atomic():
        for change in changes:
            if change.apply is None:
                continue
            try:
                change.apply()
            except ReleaseHubError as exc:
                raise _located(exc, f"{filename}:{change.path}") from exc
        if dry_run:
            transaction.set_rollback(True)
        else:
            audit_record(
                verb="config.imported",
                object_type="configcode.config",
                actor=actor,
                summary=f"Configuration imported from {filename}",
                details={"filename": filename, **plan.summary},
            )
    return plan
