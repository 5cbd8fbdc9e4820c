"""Plans: a release, an environment, a template version, its targets and a strategy, resolved into the exact
work a deployment will do, and the SHA-256 digest approvals bind to.

Parameters are rendered with Jinja2's SandboxedEnvironment and StrictUndefined, so a name
that is not defined fails here, when the deployment is requested, not at 3 a.m. Secret
variables render as references (`⟦secret:NAME⟧`); the worker substitutes their values at
execution (apps.deployments.engine.runner), so a plan, its digest and its display never
hold a secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jsonschema import Draft202012Validator

from apps.core.errors import ValidationFailed

from . import steps as step_kinds
from .engine import strategies

PLAN_FORMAT = 1
SECRET_REFERENCE = re.compile(r"⟦secret:([A-Za-z_][A-Za-z0-9_]*)⟧")
MAX_STEPS = 50


def secret_reference(name: str) -> str:
    return f"⟦secret:{name}⟧"


class Scope:
    """A namespace for templates (`var.NAME`, `target.path`): attribute access only, no dict methods
    that a variable named `items` or `keys` could collide with."""

    def __init__(self, label: str, values: dict[str, Any]) -> None:
        self._label = label
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]


class _Undefined(StrictUndefined):
    """StrictUndefined that names the missing variable as the template wrote it (`var.DB_HOST`)."""

    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, Scope):
            return f"{owner._label}.{self._undefined_name} is not defined"
        return super()._undefined_message


MAX_RENDERED = 64 * 1024  # characters of one rendered parameter
MAX_POWER = 64


class _Sandbox(SandboxedEnvironment):
    """The sandbox, also refusing expressions that would exhaust the worker: huge powers and repetitions."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise TemplateError(f"exponents above {MAX_POWER} are not allowed")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeated = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if repeated and len(sequence) * count > MAX_RENDERED:
                    raise TemplateError(f"results longer than {MAX_RENDERED} characters are not allowed")
        return super().call_binop(context, operator, left, right)


_jinja = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)


# --- Template steps ------------------------------------------------------------------------------------


def validate_steps(steps: Any) -> list[dict[str, Any]]:
    """Check a template's steps: [{"name", "kind", "params"}]; each kind registered, each parameter set
    valid against the kind's JSON Schema. Values that are templates (`{{ ... }}`) are checked after
    rendering, at plan time. Returns the steps normalised; raises ValidationFailed naming each problem."""
    if not isinstance(steps, list) or not steps:
        raise ValidationFailed(fields={"steps": ["Give at least one step: a list of {name, kind, params}."]})
    if len(steps) > MAX_STEPS:
        raise ValidationFailed(fields={"steps": [f"At most {MAX_STEPS} steps."]})
    errors: dict[str, list[str]] = {}
    normalised = []
    for index, step in enumerate(steps, start=1):
        where = f"steps[{index}]"
        if not isinstance(step, dict) or set(step) - {"name", "kind", "params"}:
            errors[where] = ["Each step is an object with name, kind and params."]
            continue
        kind_name, params = step.get("kind"), step.get("params", {})
        name = step.get("name") or kind_name
        if not isinstance(kind_name, str) or kind_name not in step_kinds.REGISTRY:
            errors[f"{where}.kind"] = [
                f"Unknown step kind {kind_name!r}; known: {', '.join(sorted(step_kinds.REGISTRY))}."
            ]
            continue
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors[f"{where}.name"] = ["A name of 1 to 200 characters."]
        if not isinstance(params, dict):
            errors[f"{where}.params"] = ["An object of parameters."]
            continue
        problems = _schema_errors(step_kinds.get(kind_name).schema, params, templated_ok=True)
        if problems:
            errors[f"{where}.params"] = problems
        problems = _syntax_errors(params)
        if problems:
            errors.setdefault(f"{where}.params", []).extend(problems)
        normalised.append(
            {"name": name.strip() if isinstance(name, str) else name, "kind": kind_name, "params": params}
        )
    if errors:
        raise ValidationFailed("The template's steps are not valid.", fields=errors)
    return normalised


def _is_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _schema_errors(schema: dict, params: dict, *, templated_ok: bool) -> list[str]:
    problems = []
    for error in Draft202012Validator(schema).iter_errors(params):
        if templated_ok and _is_templated(error.instance):
            continue
        location = ".".join(str(part) for part in error.absolute_path)
        problems.append(f"{location}: {error.message}" if location else error.message)
    return sorted(problems)


def _syntax_errors(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [problem for item in value.values() for problem in _syntax_errors(item)]
    if isinstance(value, list):
        return [problem for item in value for problem in _syntax_errors(item)]
    if _is_templated(value):
        try:
            _jinja.parse(value)
        except TemplateError as exc:
            return [f"Template syntax error in {value!r}: {exc.message}"]
    return []


# --- Rendering ---------------------------------------------------------------------------------------


def _render(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope) for item in value]
    if _is_templated(value):
        rendered = _jinja.from_string(value).render(scope)
        if len(rendered) > MAX_RENDERED:
            raise TemplateError(f"the value renders to more than {MAX_RENDERED} characters")
        return rendered
    return value


def _coerce(schema: dict, params: dict) -> dict:
    """A rendered template is text; where the schema wants a number or a boolean, read the text as JSON."""
    properties = schema.get("properties", {})
    coerced = dict(params)
    for key, value in params.items():
        wanted = properties.get(key, {}).get("type")
        if isinstance(value, str) and wanted in ("number", "integer", "boolean"):
            with contextlib.suppress(ValueError):
                number = json.loads(value)
                if not (isinstance(number, float) and not math.isfinite(number)):  # NaN, Infinity stay text
                    coerced[key] = number
    return coerced


def render_step(step: dict, scope: dict[str, Any], *, where: str) -> dict:
    """One step's parameters rendered for one target (or a batch) and validated. Raises ValidationFailed."""
    kind = step_kinds.get(step["kind"])
    try:
        params = _render(step["params"], scope)
    except UndefinedError as exc:
        raise ValidationFailed(f"{where}: {exc.message}.", fields={"template": [f"{where}: {exc.message}."]}) from exc
    except Exception as exc:  # syntax, sandbox and expression errors ({{ 1 / 0 }}) alike
        message = exc.message if isinstance(exc, TemplateError) and exc.message else f"{type(exc).__name__}: {exc}"
        raise ValidationFailed(f"{where}: {message}", fields={"template": [f"{where}: {message}"]}) from exc
    params = _coerce(kind.schema, params)
    problems = _schema_errors(kind.schema, params, templated_ok=False)
    if problems:
        raise ValidationFailed(
            f"{where}: rendered parameters are not valid.", fields={"template": [f"{where}: {p}" for p in problems]}
        )
    return params


# --- Plans ---------------------------------------------------------------------------------------------


def _variables(environment, targets) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """Environment-wide values and per-target overrides, secrets as references."""
    shared: dict[str, str] = {}
    overrides: dict[int, dict[str, str]] = {}
    for variable in environment.variables.all():
        value = secret_reference(variable.name) if variable.secret else variable.value
        if variable.target_id is None:
            shared[variable.name] = value
        else:
            overrides.setdefault(variable.target_id, {})[variable.name] = value
    return shared, overrides


def _target_info(target) -> dict[str, Any]:
    return {
        "id": target.pk,
        "name": target.name,
        "address": target.address,
        "path": target.path,
        "slot": target.slot,
        "health_check_url": target.health_check_url,
        "labels": target.labels,
        "attributes": target.attributes,
    }


def build_plan(*, release, environment, template_version, strategy: str, strategy_options: dict | None) -> dict:
    """The plan as a JSON-ready dict. Deterministic: identical inputs give an identical plan and digest.

    Raises ValidationFailed: unknown strategy or options, no targets, a name the template
    uses that is not defined (named in the error), parameters invalid once rendered.
    """
    options = strategies.normalize_options(strategy, strategy_options)
    targets = sorted(environment.targets.all(), key=lambda t: t.name)
    if not targets:
        raise ValidationFailed(
            f"{environment.name} has no targets to deploy to.", fields={"environment": ["Add a target first."]}
        )
    artifacts = [
        {"id": a.pk, "application": release.application.slug, "version": a.version, "digest": a.digest, "uri": a.uri}
        for a in (ra.artifact for ra in release.release_artifacts.select_related("artifact").order_by("position"))
    ]
    release_info = {
        "id": release.pk,
        "application": release.application.slug,
        "version": release.version,
        "artifacts": artifacts,
    }
    environment_info = {"slug": environment.slug, "name": environment.name, "tier": environment.tier}
    shared, overrides = _variables(environment, targets)

    steps = [dict(step) for step in template_version.steps]
    if options["health_gate"]:
        steps.append(
            {
                "name": "Health gate",
                "kind": "health_check",
                "params": {"url": "{{ target.health_check_url }}", "timeout": options["health_timeout"]},
                "gate": True,  # only on targets that have a health_check_url
            }
        )
    base_scope = {
        "release": Scope("release", {k: v for k, v in release_info.items() if k != "artifacts"}),
        "artifact": Scope("artifact", artifacts[0] if artifacts else {}),
        "environment": Scope("environment", environment_info),
    }
    plan_steps, per_target = [], {}
    for index, step in enumerate(steps):
        kind = step_kinds.get(step["kind"])
        where = f"Step {index + 1} ({step['name']})"
        entry = {"name": step["name"], "kind": kind.name, "scope": kind.scope, "idempotent": kind.idempotent}
        if kind.scope == "batch":
            entry["params"] = render_step(step, {**base_scope, "var": Scope("var", shared)}, where=where)
        plan_steps.append(entry)
    for target in targets:
        variables = {**shared, **overrides.get(target.pk, {})}
        scope = {**base_scope, "var": Scope("var", variables), "target": Scope("target", _target_info(target))}
        rendered = []
        for index, step in enumerate(steps):
            if step_kinds.get(step["kind"]).scope == "batch" or (step.get("gate") and not target.health_check_url):
                rendered.append(None)
                continue
            rendered.append(render_step(step, scope, where=f"Step {index + 1} ({step['name']}) on {target.name}"))
        per_target[target.name] = {**_target_info(target), "variables": variables, "params": rendered}
    return {
        "format": PLAN_FORMAT,
        "release": release_info,
        "environment": environment_info,
        "template": {"slug": template_version.template.slug, "version": template_version.number},
        "strategy": {"name": strategy, **options},
        "steps": plan_steps,
        "phases": [
            {"name": f"Batch {i + 1}", "targets": names}
            for i, names in enumerate(strategies.phases(strategy, options, [t.name for t in targets]))
        ],
        "targets": per_target,
    }


def canonical_json(plan: dict) -> str:
    return json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_digest(plan: dict) -> str:
    """SHA-256 (hex) of the plan's canonical JSON: what approvals are bound to."""
    return hashlib.sha256(canonical_json(plan).encode()).hexdigest()


def _display(params: Any) -> str:
    text = json.dumps(params, indent=2, sort_keys=True, ensure_ascii=False)
    return SECRET_REFERENCE.sub(lambda match: f"•••••••• (secret {match.group(1)})", text)


def plan_rows(plan: dict) -> list[dict]:
    """A plan for people: per step, its kind and, per target (or once for batch steps), the rendered
    parameters as indented JSON, secrets shown as masked references."""
    rows = []
    for index, step in enumerate(plan["steps"]):
        if step["scope"] == "batch":
            targets = [("every batch", _display(step["params"]))]
        else:
            targets = [
                (name, _display(info["params"][index]))
                for name, info in sorted(plan["targets"].items())
                if info["params"][index] is not None
            ]
        rows.append({**{k: step[k] for k in ("name", "kind", "scope", "idempotent")}, "targets": targets})
    return rows
