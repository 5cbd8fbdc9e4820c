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
from apps.gitops.git import check_path
from apps.gitops.selectors import repository_of, secret_names

from . import steps as step_kinds
from .engine import strategies
from .steps.switch_traffic import HOOK_KINDS

PLAN_FORMAT = 2  # 2: phases name their steps
SECRET_REFERENCE = re.compile(r"⟦secret:([A-Za-z_][A-Za-z0-9_]*)⟧")
MAX_STEPS = 50
GITOPS_KIND = "gitops_commit"


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

# Kinds templates may use; the strategies add the others (analysis, switch_traffic) themselves.
TEMPLATE_KINDS = sorted(name for name, kind in step_kinds.REGISTRY.items() if kind.in_templates)


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
        if not isinstance(kind_name, str) or kind_name not in TEMPLATE_KINDS:
            errors[f"{where}.kind"] = [f"Unknown step kind {kind_name!r}; known: {', '.join(TEMPLATE_KINDS)}."]
            continue
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors[f"{where}.name"] = ["A name of 1 to 200 characters."]
        if not isinstance(params, dict):
            errors[f"{where}.params"] = ["An object of parameters."]
            continue
        problems = _schema_errors(step_kinds.get(kind_name).schema, params, templated_ok=True)
        if problems:
            errors[f"{where}.params"] = problems
        problems = template_syntax_errors(params)
        if problems:
            errors.setdefault(f"{where}.params", []).extend(problems)
        normalised.append(
            {"name": name.strip() if isinstance(name, str) else name, "kind": kind_name, "params": params}
        )
    if errors:
        raise ValidationFailed("The template's steps are not valid.", fields=errors)
    return normalised


def traffic_hook_errors(hook: Any) -> dict[str, list[str]]:
    """What is wrong with an environment's traffic hook ({} or {"kind": "shell"|"http", "params": {...}})."""
    if not hook:
        return {}
    shape = 'Give {"kind": "shell" or "http", "params": {...}}, or nothing.'
    if not isinstance(hook, dict) or set(hook) - {"kind", "params"} or hook.get("kind") not in HOOK_KINDS:
        return {"traffic_hook": [shape]}
    params = hook.get("params", {})
    if not isinstance(params, dict):
        return {"traffic_hook": [shape]}
    problems = _schema_errors(step_kinds.get(hook["kind"]).schema, params, templated_ok=True) + template_syntax_errors(
        params
    )
    return {"traffic_hook": problems} if problems else {}


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


def template_syntax_errors(value: Any) -> list[str]:
    """Jinja2 syntax errors in a template text, or in the texts of a template step's parameters; [] when all parse."""
    if isinstance(value, dict):
        return [problem for item in value.values() for problem in template_syntax_errors(item)]
    if isinstance(value, list):
        return [problem for item in value for problem in template_syntax_errors(item)]
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


def _rendered(value: Any, scope: dict[str, Any], where: str) -> Any:
    """`value` rendered; a template error is a ValidationFailed that names `where` and the problem."""
    try:
        return _render(value, scope)
    except UndefinedError as exc:
        raise ValidationFailed(f"{where}: {exc.message}.", fields={"template": [f"{where}: {exc.message}."]}) from exc
    except Exception as exc:  # syntax, sandbox and expression errors ({{ 1 / 0 }}) alike
        message = exc.message if isinstance(exc, TemplateError) and exc.message else f"{type(exc).__name__}: {exc}"
        raise ValidationFailed(f"{where}: {message}", fields={"template": [f"{where}: {message}"]}) from exc


def render_step(step: dict, scope: dict[str, Any], *, where: str) -> dict:
    """One step's parameters rendered for one target (or a batch) and validated. Raises ValidationFailed."""
    kind = step_kinds.get(step["kind"])
    params = _coerce(kind.schema, _rendered(step["params"], scope, where))
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


def _base_scope(release_info: dict, environment_info: dict) -> dict[str, Any]:
    artifacts = release_info["artifacts"]
    return {
        "release": Scope("release", {k: v for k, v in release_info.items() if k != "artifacts"}),
        "artifact": Scope("artifact", artifacts[0] if artifacts else {}),
        "environment": Scope("environment", environment_info),
    }


def _release_info(release) -> dict[str, Any]:
    artifacts = [
        {"id": a.pk, "application": release.application.slug, "version": a.version, "digest": a.digest, "uri": a.uri}
        for a in (ra.artifact for ra in release.release_artifacts.select_related("artifact").order_by("position"))
    ]
    return {
        "id": release.pk,
        "application": release.application.slug,
        "version": release.version,
        "artifacts": artifacts,
    }


def _environment_info(environment) -> dict[str, Any]:
    return {"slug": environment.slug, "name": environment.name, "tier": environment.tier}


def _entry(step: dict, *, undo: bool = False, **extra: Any) -> dict[str, Any]:
    """A plan step; `undo`: a rollback undoes it."""
    kind = step_kinds.get(step["kind"])
    return {
        "name": step["name"],
        "kind": kind.name,
        "scope": kind.scope,
        "idempotent": kind.idempotent,
        "undo": undo,
        **extra,
    }


class _Traffic:
    """Renders switch_traffic steps: the environment's hook, for the new split and for the one before."""

    def __init__(self, environment, scope: dict[str, Any], targets: dict[str, Any]) -> None:
        self.hook = environment.traffic_hook or None
        self.scope = scope
        self.targets = targets

    def _render(self, slot: str, weight: int, names: list[str]) -> dict | None:
        if not self.hook:
            return None
        values = {
            "slot": slot,
            "other_slot": "blue" if slot == "green" else "green",
            "weight": weight,
            "targets": names,
            "addresses": [self.targets[name].address for name in names],
        }
        hook = {"kind": self.hook["kind"], "params": self.hook.get("params", {})}
        where = f"The traffic hook for {weight}% to {slot}"
        return {
            "kind": hook["kind"],
            "params": render_step(hook, {**self.scope, "traffic": Scope("traffic", values)}, where=where),
        }

    def step(self, switch: dict) -> dict[str, Any]:
        slot = switch["slot"]
        params = {
            **switch,
            "hook": self._render(slot, switch["weight"], switch["targets"]),
            "undo_hook": self._render(slot, switch["previous_weight"], switch["previous_targets"]),
        }
        return _entry({"name": "Switch traffic", "kind": "switch_traffic"}, undo=True, params=params)


def _analysis_step(spec: dict, options: dict, targets: dict[str, Any]) -> dict[str, Any]:
    watched = [
        {"name": name, "url": targets[name].health_check_url}
        for name in spec["targets"]
        if targets[name].health_check_url
    ]
    analysis = options.get("analysis", {})
    if not watched and not analysis.get("metrics_url"):
        raise ValidationFailed(
            "The analysis gate has nothing to probe: give the targets health check URLs or set analysis.metrics_url.",
            fields={"strategy_options": ["The analysis gate needs health check URLs or a metrics_url."]},
        )
    params = {"targets": watched, "seconds": spec["seconds"], **analysis}
    return _entry({"name": "Analysis", "kind": "analysis"}, params=params)


def build_plan(*, release, environment, template_version, strategy: str, strategy_options: dict | None) -> dict:
    """The plan as a JSON-ready dict. Deterministic: identical inputs give an identical plan and digest.

    The strategy's rollout (engine.strategies) gives the phases; the template's steps (and the
    health gate) run on each phase's targets, and phases add their own batch steps: a traffic
    switch, an analysis gate, a judgment, a wait. Raises ValidationFailed: unknown strategy or
    options, no targets (or none in the idle slot), a name the template uses that is not defined
    (named in the error), parameters invalid once rendered.
    """
    options = strategies.normalize_options(strategy, strategy_options)
    repository = repository_of(environment)
    if repository is not None:
        strategy_entry = {"name": strategy, **options, "pull": True}  # kept for policies; the operator rolls out
        return _pull_plan(release, environment, template_version, strategy_entry, repository)
    if any(step["kind"] == GITOPS_KIND for step in template_version.steps):
        raise ValidationFailed(
            f"{environment.name} has no environment repository, so its template cannot commit to one.",
            fields={"template": [f"gitops_commit needs {environment.name} in pull mode: give it a repository."]},
        )
    targets = sorted(environment.targets.all(), key=lambda t: t.name)
    if not targets:
        raise ValidationFailed(
            f"{environment.name} has no targets to deploy to.", fields={"environment": ["Add a target first."]}
        )
    by_name = {t.name: t for t in targets}
    specs = strategies.rollout(
        strategy,
        options,
        [(t.name, t.slot) for t in targets],
        live_slot=environment.live_slot,
        weighted=environment.traffic_weights,
    )
    release_info, environment_info = _release_info(release), _environment_info(environment)
    shared, overrides = _variables(environment, targets)
    base_scope = _base_scope(release_info, environment_info)

    template_steps = [dict(step) for step in template_version.steps]
    if options["health_gate"]:
        template_steps.append(
            {
                "name": "Health gate",
                "kind": "health_check",
                "params": {"url": "{{ target.health_check_url }}", "timeout": options["health_timeout"]},
                "gate": True,  # only on targets that have a health_check_url
            }
        )
    # Blue/green strategies roll back by switching traffic back: the slots keep their files.
    switch_only = strategies.moves_traffic(strategy, weighted=environment.traffic_weights)
    plan_steps = []
    for index, step in enumerate(template_steps):
        kind = step_kinds.get(step["kind"])
        entry = _entry(step, undo=kind.reversible and not switch_only)
        if kind.scope == "batch":
            entry["params"] = render_step(
                step, {**base_scope, "var": Scope("var", shared)}, where=f"Step {index + 1} ({step['name']})"
            )
        plan_steps.append(entry)
    traffic = _Traffic(environment, {**base_scope, "var": Scope("var", shared)}, by_name)

    def add(entry: dict) -> int:
        plan_steps.append(entry)
        return len(plan_steps) - 1

    phases, installed, switched = [], set(), False
    expects = {"live_slot": environment.live_slot, "idle_weight": environment.idle_weight}
    for spec in specs:
        indices = list(range(len(template_steps))) if spec["install"] and spec["targets"] else []
        installed.update(spec["targets"] if indices else [])
        if spec["switch"]:
            indices.append(add(traffic.step(spec["switch"])))
        if spec["analysis"]:
            indices.append(add(_analysis_step(spec["analysis"], options, by_name)))
        if spec["judgment"]:
            instructions = f"{spec['name']}: check the canary, then continue or roll back."
            judgment = {"name": "Judgment", "kind": "manual_intervention"}
            indices.append(add(_entry(judgment, params={"instructions": instructions})))
        if spec["wait"]:
            keep = {"name": "Keep the old slot", "kind": "wait"}
            indices.append(add(_entry(keep, params={"seconds": spec["wait"]})))
        phase = {"name": spec["name"], "targets": spec["targets"] if spec["install"] else [], "steps": indices}
        if spec["weight"] is not None:
            phase["weight"] = spec["weight"]
        if spec["switch"]:
            phase["slot"] = spec["switch"]["slot"]
        if switch_only and not switched:
            phase["expects"] = expects  # the environment's traffic must still be as the plan assumed
        switched = switched or bool(spec["switch"])
        phases.append(phase)

    per_target = {}
    for target in targets:
        if target.name not in installed:
            continue
        variables = {**shared, **overrides.get(target.pk, {})}
        scope = {**base_scope, "var": Scope("var", variables), "target": Scope("target", _target_info(target))}
        rendered = []
        for index, step in enumerate(template_steps):
            if step_kinds.get(step["kind"]).scope == "batch" or (step.get("gate") and not target.health_check_url):
                rendered.append(None)
                continue
            rendered.append(render_step(step, scope, where=f"Step {index + 1} ({step['name']}) on {target.name}"))
        rendered += [None] * (len(plan_steps) - len(template_steps))
        per_target[target.name] = {**_target_info(target), "variables": variables, "params": rendered}
    return {
        "format": PLAN_FORMAT,
        "release": release_info,
        "environment": environment_info,
        "template": {"slug": template_version.template.slug, "version": template_version.number},
        "strategy": {"name": strategy, **options},
        "steps": plan_steps,
        "phases": phases,
        "targets": per_target,
    }


def _repository_params(repository, environment) -> dict[str, Any]:
    """The environment repository as the gitops_commit step needs it, credentials as secret references."""
    secrets = set(secret_names(environment))
    for field in ("credential_variable", "api_token_variable"):
        name = getattr(repository, field)
        if name and name not in secrets:
            raise ValidationFailed(
                f"The repository's {field.replace('_', ' ')} {name} is not a secret variable of {environment.name}.",
                fields={"repository": [f"Add the secret variable {name} to {environment.name}, or change the name."]},
            )
    reference = {f: secret_reference(getattr(repository, f"{f}_variable")) for f in ("credential", "api_token")}
    return {
        "url": repository.url,
        "branch": repository.branch,
        "path": repository.path,
        "mode": repository.mode,
        "provider": repository.provider,
        "api_url": repository.api_url,
        "project": repository.project,
        "credential": reference["credential"] if repository.credential_variable else "",
        "api_token": reference["api_token"] if repository.api_token_variable else "",
        "ssh_known_hosts": repository.ssh_known_hosts,
        "health_url": repository.health_url,
        "sync_timeout": repository.sync_timeout,
        "poll_interval": repository.poll_interval,
    }


def _pull_plan(release, environment, template_version, strategy: dict, repository) -> dict:
    """Pull mode: the operator rolls the release out, so the plan is the template's batch steps, its
    gitops_commit step carrying the repository and the manifest rendered for this release. The environment's
    targets (the clusters the operator applies to) are recorded in the inventory once the sync is confirmed."""
    where = f"{environment.name} is in pull mode"
    steps = template_version.steps
    for index, step in enumerate(steps, start=1):
        if step_kinds.get(step["kind"]).scope != "batch":
            raise ValidationFailed(
                f"{where}: step {index} ({step['name']}) runs on targets, which the GitOps operator deploys.",
                fields={
                    "template": [f"Step {index} ({step['name']}): use gitops_commit, wait or manual_intervention."]
                },
            )
    if not any(step["kind"] == GITOPS_KIND for step in steps):
        raise ValidationFailed(
            f"{where}: its template needs a gitops_commit step.",
            fields={"template": ["Add a gitops_commit step, or choose a template that has one."]},
        )
    release_info, environment_info = _release_info(release), _environment_info(environment)
    targets = sorted(environment.targets.all(), key=lambda t: t.name)
    shared, _ = _variables(environment, targets)
    scope = {
        **_base_scope(release_info, environment_info),
        "var": Scope("var", shared),
        "targets": [_target_info(target) for target in targets],
    }
    manifest = _rendered(repository.manifest_template, scope, "The manifest template")
    try:
        path = check_path(_rendered(repository.path, scope, "The repository path"))
    except ValueError as exc:
        raise ValidationFailed(f"The repository path: {exc}", fields={"repository": [str(exc)]}) from exc
    if len(manifest) > MAX_RENDERED:
        raise ValidationFailed(
            f"The manifest is longer than {MAX_RENDERED} characters.",
            fields={"template": ["The manifest is too long."]},
        )
    if secret := SECRET_REFERENCE.search(manifest):
        raise ValidationFailed(
            f"The manifest template uses the secret variable {secret.group(1)}: secrets are never written to a "
            "repository. Let the operator provide it (Sealed Secrets, SOPS, External Secrets).",
            fields={"template": [f"The manifest uses the secret variable {secret.group(1)}."]},
        )
    plan_steps = []
    for index, step in enumerate(steps):
        entry = _entry(step, undo=step_kinds.get(step["kind"]).reversible)
        entry["params"] = render_step(step, scope, where=f"Step {index + 1} ({step['name']})")
        if step["kind"] == GITOPS_KIND:
            repository_params = {**_repository_params(repository, environment), "path": path}
            entry["params"].update(repository=repository_params, manifest=manifest)
        plan_steps.append(entry)
    names = [target.name for target in targets]
    return {
        "format": PLAN_FORMAT,
        "release": release_info,
        "environment": environment_info,
        "template": {"slug": template_version.template.slug, "version": template_version.number},
        "strategy": strategy,
        "steps": plan_steps,
        "phases": [{"name": f"Commit to {repository.branch}", "targets": names, "steps": list(range(len(steps)))}],
        "targets": {t.name: {**_target_info(t), "variables": {}, "params": [None] * len(steps)} for t in targets},
    }


def build_switch_back_plan(*, release, environment, template_version, strategy: str, options: dict, slot: str) -> dict:
    """A blue/green rollback: all traffic back to `slot`, which still holds `release`. Nothing is installed."""
    release_info, environment_info = _release_info(release), _environment_info(environment)
    scope = {**_base_scope(release_info, environment_info), "var": Scope("var", _variables(environment, [])[0])}
    targets = {t.name: t for t in environment.targets.filter(slot=slot)}
    switch = {"slot": slot, "weight": 100, "targets": sorted(targets), "previous_weight": 0, "previous_targets": []}
    expects = {"live_slot": environment.live_slot, "idle_weight": environment.idle_weight}
    return {
        "format": PLAN_FORMAT,
        "release": release_info,
        "environment": environment_info,
        "template": {"slug": template_version.template.slug, "version": template_version.number},
        "strategy": {"name": strategy, **options, "switch_back": True},
        "steps": [_Traffic(environment, scope, targets).step(switch)],
        "phases": [
            {
                "name": f"Switch traffic back to {slot}",
                "targets": [],
                "steps": [0],
                "weight": 100,
                "slot": slot,
                "expects": expects,
            }
        ],
        "targets": {},
    }


def phase_steps(plan: dict, phase: int) -> list[int]:
    """The indices of the plan steps a phase runs, in order (plans before format 2: every step)."""
    return plan["phases"][phase].get("steps", list(range(len(plan["steps"]))))


def current_step(deployment) -> dict:
    """The plan step at the deployment's cursor ({} past the end)."""
    steps = deployment.plan["steps"]
    return steps[deployment.step] if deployment.step < len(steps) else {}


def first_cursor(plan: dict) -> tuple[int, int]:
    """Where a deployment of this plan starts: (phase, step)."""
    for phase in range(len(plan["phases"])):
        if indices := phase_steps(plan, phase):
            return phase, indices[0]
    return 0, 0


def undoes(step: dict) -> bool:
    """Whether rolling back undoes this plan step (plans before format 2: reversible kinds on targets)."""
    return step.get("undo", step["scope"] == "target" and step_kinds.get(step["kind"]).reversible)


def canonical_json(plan: dict) -> str:
    return json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_digest(plan: dict) -> str:
    """SHA-256 (hex) of the plan's canonical JSON: what approvals are bound to."""
    return hashlib.sha256(canonical_json(plan).encode()).hexdigest()


def masked(value: str) -> str:
    """A plan value for people: secret references shown as a mask."""
    return SECRET_REFERENCE.sub("••••••••", value) if isinstance(value, str) else value


def _display(params: Any) -> str:
    """Parameters as indented JSON, secrets masked; a manifest (gitops_commit) after them as the file it is."""
    manifest = params.get("manifest") if isinstance(params, dict) else None
    shown = {key: value for key, value in params.items() if key != "manifest"} if manifest is not None else params
    text = json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False)
    if manifest is not None:
        text += f"\n\nmanifest ({params['repository']['path']}):\n{manifest}"
    return SECRET_REFERENCE.sub(lambda match: f"•••••••• (secret {match.group(1)})", text)


def phase_rows(plan: dict) -> list[dict]:
    """Each phase with its targets and the names of the steps it runs."""
    return [
        {
            "name": phase["name"],
            "targets": phase["targets"],
            "steps": [plan["steps"][i]["name"] for i in phase_steps(plan, index)],
        }
        for index, phase in enumerate(plan["phases"])
    ]


def plan_rows(plan: dict) -> list[dict]:
    """A plan for people: per step, its kind and, per target (or once for batch steps), the rendered
    parameters as indented JSON, secrets shown as masked references."""
    rows = []
    for index, step in enumerate(plan["steps"]):
        if step["scope"] == "batch":
            targets = [("once, in its phase", _display(step["params"]))]
        else:
            targets = [
                (name, _display(info["params"][index]))
                for name, info in sorted(plan["targets"].items())
                if info["params"][index] is not None
            ]
        rows.append({**{k: step[k] for k in ("name", "kind", "scope", "idempotent")}, "targets": targets})
    return rows
