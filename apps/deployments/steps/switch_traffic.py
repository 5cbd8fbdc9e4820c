"""`switch_traffic`: move traffic to a blue/green slot by running the environment's traffic hook.

The plan renders the hook twice: `hook` for the new split and `undo_hook` for the split before
it, so a rollback runs exactly what an approver saw. The engine records the environment's live
slot after each successful run (apps.deployments.engine.runner).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._util import SCHEMA_DIALECT
from .base import REGISTRY, StepContext, StepKind, StepResult, StepStatus, register

HOOK_KINDS = ("shell", "http")
HOOK: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {
            "type": "object",
            "properties": {"kind": {"enum": list(HOOK_KINDS)}, "params": {"type": "object"}},
            "required": ["kind", "params"],
            "additionalProperties": False,
        },
    ]
}
NAMES = {"type": "array", "items": {"type": "string"}, "maxItems": 10000}


def describe(slot: str, weight: int, targets: list[str]) -> str:
    if weight >= 100:
        return f"all traffic to {slot}"
    if weight <= 0:
        return f"no traffic to {slot}"
    return f"{weight}% of traffic to {slot} ({len(targets)} target{'s' if len(targets) != 1 else ''})"


@register
class SwitchTraffic(StepKind):
    name = "switch_traffic"
    title = "Switch traffic"
    description = (
        "Sends `weight` percent of the traffic to a blue/green slot (100: the slot becomes live) by running the "
        "environment's traffic hook; undone by running the hook for the split before."
    )
    in_templates = False
    idempotent = True  # setting the same split twice leaves it as it is
    scope = "batch"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "slot": {"enum": ["blue", "green"]},
            "weight": {"type": "integer", "minimum": 0, "maximum": 100},
            "targets": NAMES,
            "previous_weight": {"type": "integer", "minimum": 0, "maximum": 100},
            "previous_targets": NAMES,
            "hook": HOOK,
            "undo_hook": HOOK,
        },
        "required": ["slot", "weight"],
        "additionalProperties": False,
    }

    def budget(self, params: dict[str, Any]) -> float | None:
        budgets = [
            REGISTRY[hook["kind"]].budget(hook["params"])
            for hook in (params.get("hook"), params.get("undo_hook"))
            if hook
        ]
        return max((b for b in budgets if b), default=None)

    def run(self, ctx: StepContext) -> StepResult:
        p = ctx.params
        return self._apply(ctx, p.get("hook"), p["slot"], p["weight"], p.get("targets", []))

    def rollback(self, ctx: StepContext) -> StepResult:
        p = ctx.params
        return self._apply(
            ctx, p.get("undo_hook"), p["slot"], p.get("previous_weight", 0), p.get("previous_targets", [])
        )

    @staticmethod
    def _apply(ctx: StepContext, hook: dict | None, slot: str, weight: int, targets: list[str]) -> StepResult:
        what = describe(slot, weight, targets)
        if not hook:
            ctx.log(f"Switching {what}. The environment has no traffic hook: only its live slot is recorded.")
            return StepResult(StepStatus.SUCCEEDED, f"Switched {what}.")
        ctx.log(f"Switching {what} with the environment's {hook['kind']} hook.")
        env = {
            **ctx.env,
            "RELEASEHUB_TRAFFIC_SLOT": slot,
            "RELEASEHUB_TRAFFIC_WEIGHT": str(weight),
            "RELEASEHUB_TRAFFIC_TARGETS": ",".join(targets),
        }
        result = REGISTRY[hook["kind"]].run(dataclasses.replace(ctx, params=hook["params"], env=env, state={}))
        if result.status != StepStatus.SUCCEEDED:
            return StepResult(
                StepStatus.FAILED, f"The traffic hook failed: {result.message}", exit_code=result.exit_code
            )
        return StepResult(StepStatus.SUCCEEDED, f"Switched {what}.")
