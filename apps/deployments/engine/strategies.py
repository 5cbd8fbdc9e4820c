"""Strategies split an environment's targets into phases (batches deployed one after the other).

Each strategy declares its options with defaults; `normalize_options` validates what a
caller sent, so the plan (and its digest) always holds the complete, explicit options.
"""

from __future__ import annotations

import math
import re
from typing import Any

from apps.core.errors import ValidationFailed

from ..models import Strategy

_PERCENT = re.compile(r"^(100|[1-9][0-9]?)%$")

OPTIONS: dict[str, dict[str, Any]] = {
    Strategy.ALL_AT_ONCE: {"health_gate": True, "health_timeout": 60, "rollback_on_failure": False},
    Strategy.ROLLING: {
        "batch_size": 1,  # a number of targets, or a percentage such as "25%"
        "pause_seconds": 0,  # between batches
        "health_gate": True,  # check each target's health_check_url after its batch
        "health_timeout": 60,
        "rollback_on_failure": False,  # roll the updated targets back when a batch fails
    },
}


def normalize_options(strategy: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The strategy's complete options: defaults filled in, every value checked. Raises ValidationFailed."""
    if strategy not in OPTIONS:
        raise ValidationFailed(fields={"strategy": [f"Choose one of: {', '.join(OPTIONS)}."]})
    options = dict(options or {})
    defaults = OPTIONS[strategy]
    errors: dict[str, list[str]] = {}
    for key in sorted(set(options) - set(defaults)):
        errors[key] = [f"Not an option of the {strategy} strategy (options: {', '.join(defaults)})."]
    result = {**defaults, **{k: v for k, v in options.items() if k in defaults}}
    for key in ("health_gate", "rollback_on_failure"):
        if not isinstance(result[key], bool):
            errors[key] = ["Must be true or false."]
    for key, upper in (("pause_seconds", 86400), ("health_timeout", 3600)):
        if key in result and (
            isinstance(result[key], bool) or not isinstance(result[key], int) or not 0 <= result[key] <= upper
        ):
            errors[key] = [f"Must be a whole number of seconds from 0 to {upper}."]
    if "batch_size" in result:
        size = result["batch_size"]
        if isinstance(size, str) and _PERCENT.match(size.strip()):
            result["batch_size"] = size.strip()
        elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
            errors["batch_size"] = ['Must be a number of targets (1 or more) or a percentage such as "25%".']
    if errors:
        raise ValidationFailed(fields={f"strategy_options.{key}": value for key, value in errors.items()})
    return result


def batch_count(options: dict[str, Any], targets: int) -> int:
    """How many targets go in each batch."""
    size = options.get("batch_size")
    if size is None:
        return max(targets, 1)
    if isinstance(size, str):
        return max(1, math.ceil(targets * int(size.rstrip("%")) / 100))
    return size


def phases(strategy: str, options: dict[str, Any], target_names: list[str]) -> list[list[str]]:
    """The batches of targets, in order."""
    size = len(target_names) if strategy == Strategy.ALL_AT_ONCE else batch_count(options, len(target_names))
    return [target_names[i : i + size] for i in range(0, len(target_names), size)]
