"""Strategies: how a deployment moves targets and traffic to the new release, as an ordered rollout.

Each strategy declares its options as a JSON Schema with defaults (`SCHEMAS`, also served at
/api/v1/deployment-strategies/). `normalize_options` validates what a caller sent and fills in
the defaults, so the plan, and its digest, always hold the complete, explicit options.
`rollout` turns the options and the environment's targets into phase specifications, which
apps.deployments.plans turns into the plan's phases and steps:

    {"name", "targets": [names to install on], "install": bool, "switch": {...} | None,
     "analysis": {"targets": [names], "seconds": n} | None, "judgment": bool, "wait": seconds | None,
     "weight": percent | None}

Blue/green strategies install on the idle slot and then move traffic with `switch_traffic`
steps; their rollback undoes the switches only, so both slots keep their files. Canaries
without traffic weights install on a growing share of the targets and roll those back.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from jsonschema import Draft202012Validator

from apps.core.errors import ValidationFailed

from ..models import Strategy
from ..steps._util import HTTP_URL, SCHEMA_DIALECT
from ..steps.analysis import condition_error

SLOT_STRATEGIES = (Strategy.BLUE_GREEN, Strategy.ROLLING_BLUE_GREEN)
SLOTS = ("blue", "green")

_DURATION = re.compile(r"^(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 86400},
        {"type": "string", "pattern": r"^(?=\d)(\d+h)?(\d+m)?(\d+s?)?$", "maxLength": 16},
    ],
    "x-message": 'Must be a number of seconds (up to 86400) or a duration such as "90s", "5m" or "1h30m".',
}
BATCH_SIZE: dict[str, Any] = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^(100|[1-9][0-9]?)%$"}],
    "default": 1,
    "description": 'How many targets per batch: a number, or a percentage such as "25%".',
    "x-message": 'Must be a number of targets (1 or more) or a percentage such as "25%".',
}


def _boolean(default: bool, description: str) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


def _seconds(default: int, upper: int, description: str) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 0,
        "maximum": upper,
        "default": default,
        "description": description,
        "x-message": f"Must be a whole number of seconds from 0 to {upper}.",
    }


def _common(rollback: bool) -> dict[str, Any]:
    return {
        "health_gate": _boolean(True, "Check each updated target's health_check_url before going on."),
        "health_timeout": _seconds(60, 3600, "Seconds each target may take to become healthy."),
        "rollback_on_failure": _boolean(rollback, "Undo what the deployment changed when a step or a gate fails."),
    }


ANALYSIS: dict[str, Any] = {
    "type": "object",
    "description": "How the analysis gate after a stage or batch judges the targets that took the new release.",
    "properties": {
        "interval": {
            "type": "number",
            "minimum": 0.1,
            "maximum": 600,
            "default": 10,
            "description": "Seconds between probe rounds.",
        },
        "max_failure_ratio": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.1,
            "description": "The gate fails once the share of failed probes exceeds this (0.1 = 10%).",
        },
        "min_probes": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
            "default": 1,
            "description": "Probes made before the failure ratio is judged.",
        },
        "metrics_url": {**HTTP_URL, "description": "A URL answering a JSON object of metrics, probed each round."},
        "metrics_condition": {
            "type": "string",
            "minLength": 1,
            "maxLength": 500,
            "description": "An expression on the metrics' fields that must hold, e.g. error_rate < 0.01.",
        },
    },
    "dependentRequired": {"metrics_url": ["metrics_condition"], "metrics_condition": ["metrics_url"]},
    "additionalProperties": False,
    "default": {},
}

STAGES: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 20,
    "items": {
        "type": "object",
        "properties": {
            "weight": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "description": "Percent of targets (or traffic).",
            },
            "pause": {**DURATION, "description": "How long the analysis gate watches this stage."},
            "judgment": {"type": "boolean", "description": "Wait for a person to continue or roll back."},
        },
        "required": ["weight"],
        "additionalProperties": False,
    },
    "default": [{"weight": 10, "pause": "5m"}, {"weight": 50, "pause": "10m"}, {"weight": 100}],
    "description": "Stages with growing weights; the last one is 100.",
}


def _schema(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    Strategy.ALL_AT_ONCE: _schema("Every target at once", _common(False)),
    Strategy.ROLLING: _schema(
        "Targets in batches, a health gate after each",
        {
            "batch_size": BATCH_SIZE,
            "pause_seconds": _seconds(0, 86400, "Seconds between batches."),
            **_common(False),
        },
    ),
    Strategy.BLUE_GREEN: _schema(
        "Install on the idle slot, verify, switch all traffic",
        {
            **_common(True),
            "keep_old_slot_for": {
                **DURATION,
                "default": 0,
                "description": "How long the deployment keeps the old slot as it is after the switch, with "
                "Switch back one click away, before it ends.",
            },
        },
    ),
    Strategy.ROLLING_BLUE_GREEN: _schema(
        "Install on the idle slot, move traffic to it in batches with a gate after each",
        {
            "batch_size": BATCH_SIZE,
            "pause": {**DURATION, "default": 0, "description": "How long the gate after each batch watches it."},
            "analysis": ANALYSIS,
            **_common(True),
        },
    ),
    Strategy.CANARY: _schema(
        "A growing share of targets (or traffic), with an analysis gate after each stage",
        {"stages": STAGES, "analysis": ANALYSIS, **_common(True)},
    ),
}


def moves_traffic(strategy: str, *, weighted: bool) -> bool:
    """Whether the strategy installs on the idle slot and moves traffic (its rollback only moves it back)."""
    return strategy in SLOT_STRATEGIES or (strategy == Strategy.CANARY and weighted)


def duration_seconds(value: int | str) -> int:
    """Seconds of a duration given as seconds or as text such as "1h30m" (already schema-checked)."""
    if isinstance(value, int):
        return value
    hours, minutes, secs = (int(part or 0) for part in _DURATION.match(value).groups())
    return hours * 3600 + minutes * 60 + secs


def _fill_defaults(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    filled = dict(value)
    for key, spec in schema.get("properties", {}).items():
        if key not in filled and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
        if spec.get("type") == "object" and isinstance(filled.get(key), dict):
            filled[key] = _fill_defaults(spec, filled[key])
    return filled


def _message(error) -> str:
    return error.schema.get("x-message") or error.message


def strategy_errors(strategy: str, options: Any) -> dict[str, list[str]]:
    """{"strategy_options.<path>": [messages]} of what is wrong with `options` for `strategy`; {} when valid."""
    if strategy not in SCHEMAS:
        return {"strategy": [f"Choose one of: {', '.join(SCHEMAS)}."]}
    if not isinstance(options, dict):
        return {"strategy_options": ["An object of options."]}
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(SCHEMAS[strategy]).iter_errors(options):
        if error.validator == "additionalProperties" and not error.absolute_path:
            for key in sorted(set(options) - set(SCHEMAS[strategy]["properties"])):
                known = ", ".join(SCHEMAS[strategy]["properties"])
                errors[f"strategy_options.{key}"] = [f"Not an option of the {strategy} strategy (options: {known})."]
            continue
        path = ".".join(str(part) for part in error.absolute_path)
        errors.setdefault(f"strategy_options.{path}" if path else "strategy_options", []).append(_message(error))
    if errors:
        return errors
    stages = options.get("stages")
    if stages:
        weights = [stage["weight"] for stage in stages]
        if weights != sorted(set(weights)) or weights[-1] != 100:
            errors["strategy_options.stages"] = ["Give stages with growing weights, the last one 100."]
    condition = options.get("analysis", {}).get("metrics_condition")
    if condition and (problem := condition_error(condition)):
        errors["strategy_options.analysis.metrics_condition"] = [problem]
    return errors


def normalize_options(strategy: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The strategy's complete options: defaults filled in, durations in seconds. Raises ValidationFailed."""
    options = {} if options is None else options
    errors = strategy_errors(strategy, options)
    if errors:
        raise ValidationFailed(fields=errors)
    result = _fill_defaults(SCHEMAS[strategy], options)
    for key in ("pause", "keep_old_slot_for"):
        if key in result:
            result[key] = duration_seconds(result[key])
    if "stages" in result:
        result["stages"] = [
            {"weight": s["weight"], "pause": duration_seconds(s.get("pause", 0)), "judgment": s.get("judgment", False)}
            for s in result["stages"]
        ]
    return result


def batch_count(options: dict[str, Any], targets: int) -> int:
    """How many targets go in each batch."""
    size = options.get("batch_size")
    if size is None:
        return max(targets, 1)
    if isinstance(size, str):
        return max(1, math.ceil(targets * int(size.rstrip("%")) / 100))
    return size


def _batches(names: list[str], size: int) -> list[list[str]]:
    return [names[i : i + size] for i in range(0, len(names), size)]


def _slots(targets: list[tuple[str, str]], live: str) -> tuple[str, list[str]]:
    """The idle slot and its targets' names; ValidationFailed unless every target is in a slot."""
    loose = [name for name, slot in targets if slot not in SLOTS]
    if loose:
        raise ValidationFailed(
            f"Blue/green needs every target in slot blue or green; not in a slot: {', '.join(loose)}.",
            fields={"strategy": ["Put the environment's targets in slots blue and green first."]},
        )
    idle = "green" if live != "green" else "blue"
    names = [name for name, slot in targets if slot == idle]
    if not names:
        raise ValidationFailed(
            f"The idle slot ({idle}) has no targets to install on.",
            fields={"strategy": [f"Add targets to slot {idle}."]},
        )
    return idle, names


def _phase(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targets": [],
        "install": False,
        "switch": None,
        "analysis": None,
        "judgment": False,
        "wait": None,
        "weight": None,
        **spec,
    }


def _switch(slot: str, weight: int, previous: int, targets: list[str], previous_targets: list[str]) -> dict:
    return {
        "slot": slot,
        "weight": weight,
        "targets": targets,
        "previous_weight": previous,
        "previous_targets": previous_targets,
    }


def rollout(
    strategy: str,
    options: dict[str, Any],
    targets: list[tuple[str, str]],
    *,
    live_slot: str = "",
    weighted: bool = False,
) -> list[dict[str, Any]]:
    """The phases of a deployment over `targets` ([(name, slot)], sorted) as specifications (module doc).

    `live_slot` is the environment's live slot ("" before its first switch: blue counts as live);
    `weighted` says its traffic hook splits traffic by weight.
    """
    names = [name for name, _ in targets]
    if strategy == Strategy.ALL_AT_ONCE:
        return [_phase("Batch 1", targets=names, install=True)]
    if strategy == Strategy.ROLLING:
        return [
            _phase(f"Batch {i + 1}", targets=batch, install=True)
            for i, batch in enumerate(_batches(names, batch_count(options, len(names))))
        ]
    if moves_traffic(strategy, weighted=weighted):
        idle, idle_names = _slots(targets, live_slot)
        phases = [_phase(f"Install on {idle} (idle slot)", targets=idle_names, install=True)]
        old = "blue" if idle == "green" else "green"
        if strategy == Strategy.BLUE_GREEN:
            phases.append(_phase(f"Switch traffic to {idle}", switch=_switch(idle, 100, 0, idle_names, []), weight=100))
            if options["keep_old_slot_for"]:
                phases.append(_phase(f"Keep {old} as it is", wait=options["keep_old_slot_for"]))
        elif strategy == Strategy.ROLLING_BLUE_GREEN:
            moved: list[str] = []
            weight = 0
            for i, batch in enumerate(_batches(idle_names, batch_count(options, len(idle_names)))):
                before, previous = list(moved), weight
                moved += batch
                weight = round(100 * len(moved) / len(idle_names))
                phases.append(
                    _phase(
                        f"Batch {i + 1}: {weight}% of traffic to {idle}",
                        switch=_switch(idle, weight, previous, list(moved), before),
                        analysis={"targets": batch, "seconds": options["pause"]},
                        weight=weight,
                    )
                )
        else:  # a canary by traffic weight
            previous = 0
            for stage in options["stages"]:
                phases.append(
                    _stage_phase(
                        stage,
                        idle_names,
                        switch=_switch(idle, stage["weight"], previous, idle_names, idle_names if previous else []),
                    )
                )
                previous = stage["weight"]
        return phases
    # A canary by share of targets.
    phases, done = [], 0
    for stage in options["stages"]:
        count = max(done, max(1, math.ceil(len(names) * stage["weight"] / 100)))
        phase = _stage_phase(stage, names[:count])
        phase["targets"], phase["install"] = names[done:count], True
        phases.append(phase)
        done = count
    return phases


def _stage_phase(stage: dict[str, Any], watched: list[str], switch: dict | None = None) -> dict[str, Any]:
    """A canary stage: its analysis (when it pauses) watches `watched`; a judgment when asked."""
    return _phase(
        f"Canary {stage['weight']}%",
        switch=switch,
        analysis={"targets": watched, "seconds": stage["pause"]} if stage["pause"] else None,
        judgment=stage["judgment"],
        weight=stage["weight"],
    )


def _duration(value: int) -> str:
    hours, rest = divmod(int(value), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def describe(strategy: dict[str, Any]) -> str:
    """A plan's strategy (name and complete options) in a few words, for pages: "10% (5m) → 50% → 100%"."""
    name = strategy.get("name")
    if strategy.get("pull"):
        return "pull mode: the GitOps operator rolls it out"
    gate = "" if strategy.get("health_gate", True) else ", no health gate"
    if name == Strategy.CANARY:
        stages = [
            f"{s['weight']}%"
            + (f" ({_duration(s['pause'])} analysis" if s["pause"] else "")
            + (", judgment" if s["judgment"] and s["pause"] else " (judgment" if s["judgment"] else "")
            + (")" if s["pause"] or s["judgment"] else "")
            for s in strategy.get("stages", [])
        ]
        return " → ".join(stages) + gate
    if name == Strategy.BLUE_GREEN:
        if strategy.get("switch_back"):
            return "switch the traffic back to the old slot"
        keep = strategy.get("keep_old_slot_for", 0)
        return "install on the idle slot, then switch" + (f"; old slot kept {_duration(keep)}" if keep else "") + gate
    if name == Strategy.ROLLING_BLUE_GREEN:
        pause = strategy.get("pause", 0)
        return (
            f"install on the idle slot, then move traffic in batches of {strategy.get('batch_size')}"
            + (f", {_duration(pause)} analysis each" if pause else "")
            + gate
        )
    if name == Strategy.ROLLING:
        pause = strategy.get("pause_seconds", 0)
        return f"batches of {strategy.get('batch_size')}" + (f", {_duration(pause)} apart" if pause else "") + gate
    return "every target at once" + gate
