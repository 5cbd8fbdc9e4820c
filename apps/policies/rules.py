"""The built-in rule kinds of policy sets: each a JSON Schema for its parameters and a check of one deployment
(or of a release and an environment in a dry run) that passes or fails with a message and the inputs it read.

A failure is `waitable` when time alone may cure it (a freeze ends, a booking starts, a soak time elapses, a
window opens, a concurrent deployment finishes): a deployment failing only such rules waits instead of failing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Min, Q
from jsonschema import Draft202012Validator

from apps.deployments.engine.strategies import DURATION, duration_seconds
from apps.deployments.models import ACTIVE_STATUSES, Deployment, DeploymentStatus, Strategy

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXPRESSION_LIMIT = 2000  # characters of a CEL expression
EXPRESSION_SECONDS = 0.5  # an expression taking longer fails closed


@dataclass
class Context:
    """What a rule reads: the release and its artifacts, the environment, how and by whom it would be deployed,
    and when. `deployment` is None in a dry run and before the deployment exists."""

    release: Any
    artifacts: list
    environment: Any
    strategy: str
    requester: Any
    at: datetime
    change_ticket: str = ""
    deployment: Any = None
    memo: dict = field(default_factory=dict, repr=False)

    def once(self, key, read: Callable[[], Any]) -> Any:
        """`read()`, called once per evaluation whatever the number of rules asking for `key`: twenty sets of
        rules cost the queries of one."""
        if key not in self.memo:
            self.memo[key] = read()
        return self.memo[key]


@dataclass
class Outcome:
    passed: bool
    message: str
    inputs: dict = field(default_factory=dict)
    waitable: bool = False


@dataclass(frozen=True)
class RuleKind:
    name: str
    title: str
    schema: dict
    check: Callable[[dict, Context], Outcome]


KINDS: dict[str, RuleKind] = {}


def kind(name: str, title: str, properties: dict, required: tuple[str, ...] = ()):
    """Register a rule kind whose parameters are an object with `properties`."""
    schema = {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    Draft202012Validator.check_schema(schema)

    def register(check: Callable[[dict, Context], Outcome]) -> Callable[[dict, Context], Outcome]:
        KINDS[name] = RuleKind(name, title, schema, check)
        return check

    return register


def params_errors(kind_name: str, params: Any) -> dict[str, list[str]]:
    """{"params.<path>": [messages]} of what is wrong with a rule's parameters; {} when they are valid."""
    rule_kind = KINDS.get(kind_name)
    if rule_kind is None:
        return {"kind": [f"Unknown rule kind {kind_name!r}; known: {', '.join(KINDS)}."]}
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(rule_kind.schema).iter_errors(params):
        path = ".".join(str(part) for part in error.absolute_path)
        errors.setdefault(f"params.{path}" if path else "params", []).append(
            error.schema.get("x-message") or error.message
        )
    if not errors and kind_name == "expression":
        problem = expression_error(params["expression"])
        if problem:
            errors["params.expression"] = [problem]
    if not errors and kind_name == "change_ticket":
        try:
            re.compile(params["pattern"])
        except re.error as exc:
            errors["params.pattern"] = [f"Not a regular expression: {exc}."]
    return errors


def title_of(kind_name: str) -> str:
    """A rule kind's title; the name itself for a kind no longer registered."""
    return KINDS[kind_name].title if kind_name in KINDS else kind_name


def value_text(value: Any) -> str:
    """A rule parameter as people read it: lists joined, objects as key=value, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def params_text(params: dict) -> str:
    """A rule's parameters on one line: `patterns: main, release/*; max: 2`."""
    return "; ".join(f"{key}: {value_text(value)}" for key, value in params.items())


# --- Globs of branch names ------------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern:
    """A branch glob as a regex: `*` within one path segment, `**` across segments, `?` one character
    (not `/`). `release/*` matches release/1.4 but not release/1.4/hotfix; `feature/**` matches both."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def branch_matches(branch: str, patterns: list[str]) -> bool:
    return bool(branch) and any(glob_regex(pattern).fullmatch(branch) for pattern in patterns)


# --- The kinds ----------------------------------------------------------------------------------------------


@kind(
    "require_approvals",
    "Approvals",
    {
        "min": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many approvals."},
        "teams": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$"},
            "uniqueItems": True,
            "description": "Teams whose members may approve (empty: anyone with approve).",
        },
    },
    required=("min",),
)
def _require_approvals(params: dict, ctx: Context) -> Outcome:
    from apps.approvals.models import ApprovalPolicy  # approvals builds on deployments, like this app

    teams = sorted(params.get("teams", []))
    inputs = {"min": params["min"], "teams": teams}
    policy = ctx.once(
        "approval_policy",
        lambda: ApprovalPolicy.objects.filter(environment=ctx.environment).prefetch_related("eligible_teams").first(),
    )
    if policy is None or policy.required_approvals < params["min"]:
        have = policy.required_approvals if policy else 0
        return Outcome(
            False,
            f"{ctx.environment.name}'s approval gate asks for {have} approval(s), fewer than "
            f"the {params['min']} this rule requires.",
            {**inputs, "gate": have},
        )
    eligible = sorted(team.slug for team in policy.eligible_teams.all())
    if teams and (not eligible or not set(eligible) <= set(teams)):
        return Outcome(
            False,
            f"The approval gate lets {', '.join(eligible) or 'any team'} approve; this rule "
            f"allows only {', '.join(teams)}.",
            {**inputs, "gate_teams": eligible},
        )
    return Outcome(True, f"{params['min']} approval(s) required by the approval gate.", inputs)


@kind("require_booking", "Booked slot", {})
def _require_booking(params: dict, ctx: Context) -> Outcome:
    from apps.scheduling.models import Booking, BookingStatus  # the calendar builds on deployments

    at = ctx.deployment.scheduled_for if ctx.deployment and ctx.deployment.scheduled_for else ctx.at
    booked = ctx.once(
        "booking",
        lambda: (
            Booking.objects.filter(
                environment=ctx.environment, status=BookingStatus.APPROVED, starts_at__lte=at, ends_at__gt=at
            )
            .filter(Q(release__isnull=True) | Q(release=ctx.release))
            .first()
        ),
    )
    if booked is None:
        return Outcome(
            False,
            f"No approved booking of {ctx.environment.name} covers {at:%Y-%m-%d %H:%M} UTC.",
            {"at": at.isoformat()},
            waitable=True,
        )
    return Outcome(True, f"Inside booking #{booked.pk} “{booked.title}”.", {"booking": booked.pk})


@kind("no_freeze", "No freeze", {})
def _no_freeze(params: dict, ctx: Context) -> Outcome:
    from apps.scheduling import freezes  # the calendar builds on deployments

    frozen = ctx.once("freeze", lambda: freezes.frozen_at(ctx.environment.pk, ctx.at))
    if frozen is not None:
        window, ends = frozen
        return Outcome(False, freezes.describe(window, ends) + ".", {"freeze": window.pk}, waitable=True)
    return Outcome(True, "No freeze in force.", {})


@kind(
    "require_previous_stage",
    "Previous stage first",
    {
        "soak": {**DURATION, "description": 'How long it must have run there successfully, e.g. "24h".'},
    },
)
def _require_previous_stage(params: dict, ctx: Context) -> Outcome:
    from apps.releases.lifecycle import stages_of

    stages = ctx.once("stages", lambda: stages_of(ctx.release))
    index = next(
        (i for i, s in enumerate(stages) if any(e.pk == ctx.environment.pk for e in s.environments.all())), None
    )
    if index is None:
        return Outcome(False, f"{ctx.environment.name} is not a stage of the release's lifecycle.", {})
    if index == 0:
        return Outcome(True, f"{ctx.environment.name} is the first stage.", {"stage": stages[0].name})
    previous = stages[index - 1]
    soak = duration_seconds(params.get("soak", 0))
    inputs: dict[str, Any] = {"stage": previous.name, "soak_seconds": soak}
    finished: dict[str, datetime] = {}
    succeeded = ctx.once(  # the first success of the release in each environment of the previous stage
        "previous_stage",
        lambda: dict(
            Deployment.objects.filter(
                release=ctx.release,
                environment__in=[e.pk for e in previous.environments.all()],
                status=DeploymentStatus.SUCCEEDED,
            )
            .values_list("environment_id")
            .annotate(first=Min("finished_at"))
            .order_by()
        ),
    )
    for environment in previous.environments.all():
        first = succeeded.get(environment.pk)
        finished[environment.slug] = first
        if first is None:
            return Outcome(
                False,
                f"{ctx.release} has not succeeded in {environment.name} ({previous.name}) yet.",
                {**inputs, "missing": environment.slug},
            )
        if first + timedelta(seconds=soak) > ctx.at:
            ready = first + timedelta(seconds=soak)
            return Outcome(
                False,
                f"{ctx.release} has run in {environment.name} since {first:%Y-%m-%d %H:%M} UTC; "
                f"it may go on at {ready:%Y-%m-%d %H:%M} UTC.",
                {**inputs, "ready_at": ready.isoformat()},
                waitable=True,
            )
    return Outcome(
        True, f"Succeeded in {previous.name}.", {**inputs, "since": {k: v.isoformat() for k, v in finished.items()}}
    )


@kind(
    "allowed_strategies",
    "Allowed strategies",
    {
        "strategies": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [s.value for s in Strategy]},
        },
    },
    required=("strategies",),
)
def _allowed_strategies(params: dict, ctx: Context) -> Outcome:
    inputs = {"strategy": ctx.strategy, "allowed": params["strategies"]}
    if ctx.strategy not in params["strategies"]:
        return Outcome(
            False, f"{ctx.environment.name} allows only {', '.join(params['strategies'])}, not {ctx.strategy}.", inputs
        )
    return Outcome(True, f"{ctx.strategy} is allowed.", inputs)


@kind(
    "allowed_branches",
    "Allowed branches",
    {
        "patterns": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S+$"},
        },
    },
    required=("patterns",),
)
def _allowed_branches(params: dict, ctx: Context) -> Outcome:
    branches = {a.version: a.branch for a in ctx.artifacts}
    inputs = {"branches": branches, "patterns": params["patterns"]}
    wrong = [
        f"{version} ({branch or 'no branch'})"
        for version, branch in branches.items()
        if not branch_matches(branch, params["patterns"])
    ]
    if wrong:
        return Outcome(
            False,
            f"Built from a branch not allowed here ({', '.join(params['patterns'])}): {', '.join(wrong)}.",
            inputs,
        )
    return Outcome(True, "Every build comes from an allowed branch.", inputs)


@kind(
    "artifact_requirements",
    "Artifact requirements",
    {
        "digest": {"type": "boolean", "description": "Every build has a digest."},
        "build_url": {"type": "boolean", "description": "Every build names the CI build that made it."},
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "maxProperties": 20,
            "description": 'Labels every build must carry with these values, e.g. {"tests": "passed"}.',
        },
    },
)
def _artifact_requirements(params: dict, ctx: Context) -> Outcome:
    missing = []
    for artifact in ctx.artifacts:
        if params.get("digest") and not artifact.digest:
            missing.append(f"{artifact.version}: no digest")
        if params.get("build_url") and not artifact.build_url:
            missing.append(f"{artifact.version}: no build URL")
        for key, value in params.get("labels", {}).items():
            if artifact.labels.get(key) != value:
                missing.append(f"{artifact.version}: {key}={artifact.labels.get(key, '(none)')}, needs {value}")
    inputs = {"artifacts": [a.version for a in ctx.artifacts], "required": params}
    if missing:
        return Outcome(False, "Builds miss requirements: " + "; ".join(missing) + ".", inputs)
    return Outcome(True, "Every build meets the requirements.", inputs)


TIME = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$", "x-message": "A time such as 09:00."}


@kind(
    "deployment_window",
    "Deployment window",
    {
        "weekdays": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(WEEKDAYS)}},
        "start": TIME,
        "end": TIME,
    },
    required=("weekdays", "start", "end"),
)
def _deployment_window(params: dict, ctx: Context) -> Outcome:
    local = ctx.at.astimezone(ZoneInfo(ctx.environment.timezone))
    clock = local.strftime("%H:%M")
    day = WEEKDAYS[local.weekday()]
    inputs = {"local_time": local.isoformat(), "weekday": day, "timezone": ctx.environment.timezone, **params}
    if day in params["weekdays"] and params["start"] <= clock < params["end"]:
        return Outcome(True, f"{day} {clock} {ctx.environment.timezone} is inside the window.", inputs)
    return Outcome(
        False,
        f"{day} {clock} {ctx.environment.timezone} is outside the deployment window "
        f"({', '.join(params['weekdays'])} {params['start']} to {params['end']}).",
        inputs,
        waitable=True,
    )


@kind(
    "max_concurrent",
    "Concurrent deployments",
    {
        "environments": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$"},
        },
        "max": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    required=("environments", "max"),
)
def _max_concurrent(params: dict, ctx: Context) -> Outcome:
    running = Deployment.objects.filter(environment__slug__in=params["environments"], status__in=ACTIVE_STATUSES)
    if ctx.deployment is not None:
        running = running.exclude(pk=ctx.deployment.pk)
    count = ctx.once(("running", *sorted(params["environments"])), running.count)
    inputs = {"running": count, "max": params["max"], "environments": params["environments"]}
    if count >= params["max"]:
        return Outcome(
            False,
            f"{count} deployment(s) already run across {', '.join(params['environments'])} (at most {params['max']}).",
            inputs,
            waitable=True,
        )
    return Outcome(True, f"{count} of at most {params['max']} running.", inputs)


@kind(
    "change_ticket",
    "Change ticket",
    {
        "pattern": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "A regular expression the ticket reference must match, e.g. ^CHG-[0-9]+$.",
        },
    },
    required=("pattern",),
)
def _change_ticket(params: dict, ctx: Context) -> Outcome:
    inputs = {"ticket": ctx.change_ticket, "pattern": params["pattern"]}
    if not ctx.change_ticket:
        return Outcome(False, f"A change ticket reference matching {params['pattern']} is required.", inputs)
    if not re.search(params["pattern"], ctx.change_ticket):
        return Outcome(False, f"Change ticket {ctx.change_ticket!r} does not match {params['pattern']}.", inputs)
    return Outcome(True, f"Change ticket {ctx.change_ticket}.", inputs)


# --- CEL expressions ------------------------------------------------------------------------------------------


@cache
def _cel():
    """The CEL environment (building its parser takes a while: once per process)."""
    import celpy

    return celpy.Environment()


@lru_cache(maxsize=1024)
def _program(text: str):
    """The compiled expression, kept per process (rules are evaluated at every deployment start)."""
    return _cel().program(_cel().compile(text))


def expression_error(text: str) -> str:
    """Why a CEL expression does not compile ("" when it does)."""
    import celpy

    if len(text) > EXPRESSION_LIMIT:
        return f"At most {EXPRESSION_LIMIT} characters."
    try:
        _cel().compile(text)
    except celpy.CELParseError as exc:
        return "Not a valid expression: " + " ".join(str(exc).split())[:300]
    return ""


def cel_context(ctx: Context) -> dict:
    """The documented variables an expression reads (docs/policies.md)."""
    local = ctx.at.astimezone(ZoneInfo(ctx.environment.timezone))
    return {
        "release": {"version": ctx.release.version, "application": ctx.release.application.slug},
        "artifacts": [
            {
                "version": a.version,
                "branch": a.branch,
                "commit": a.commit,
                "digest": a.digest,
                "build_url": a.build_url,
                "labels": dict(a.labels),
            }
            for a in ctx.artifacts
        ],
        "environment": {
            "slug": ctx.environment.slug,
            "tier": ctx.environment.tier,
            "labels": dict(ctx.environment.labels),
            "timezone": ctx.environment.timezone,
        },
        "deployment": {"strategy": ctx.strategy, "change_ticket": ctx.change_ticket},
        "requester": {
            "username": ctx.requester.username if ctx.requester else "",
            "teams": sorted(ctx.requester.groups.values_list("team__slug", flat=True)) if ctx.requester else [],
        },
        "time": {
            "weekday": WEEKDAYS[local.weekday()],
            "hour": local.hour,
            "minute": local.minute,
            "iso": ctx.at.isoformat(),
        },
    }


@kind(
    "expression",
    "Custom rule (CEL)",
    {
        "expression": {"type": "string", "minLength": 1, "maxLength": EXPRESSION_LIMIT},
        "message": {"type": "string", "maxLength": 500, "description": "What a failure says."},
    },
    required=("expression",),
)
def _expression(params: dict, ctx: Context) -> Outcome:
    import celpy
    from celpy import json_to_cel

    inputs = {"expression": params["expression"]}
    result: dict[str, Any] = {}
    try:  # compiling and reading the context happen here; only the evaluation runs against the clock
        program = _program(params["expression"])
        activation = ctx.once("cel", lambda: {name: json_to_cel(value) for name, value in cel_context(ctx).items()})
    except celpy.CELParseError as exc:
        return Outcome(False, f"The expression does not compile ({exc.__class__.__name__}); it fails closed.", inputs)

    def run() -> None:
        try:
            result["value"] = program.evaluate(activation)
        except Exception as exc:  # any error of the expression fails the rule, closed
            result["error"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(EXPRESSION_SECONDS)
    if worker.is_alive():
        return Outcome(False, f"The expression took longer than {EXPRESSION_SECONDS} s; it fails closed.", inputs)
    value = result.get("value")
    if "error" in result or not isinstance(value, bool | celpy.celtypes.BoolType):
        problem = result.get("error") or f"it gave {value!r}, not true or false"
        return Outcome(False, f"The expression could not be evaluated ({problem}); it fails closed.", inputs)
    if not bool(value):
        return Outcome(False, params.get("message") or f"The expression {params['expression']} is false.", inputs)
    return Outcome(True, "The expression holds.", inputs)
