"""`wait`: let time pass between batches (a bake time) without holding a worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ._util import SCHEMA_DIALECT, now, seconds
from .base import StepContext, StepKind, StepResult, StepStatus, register


@register
class Wait(StepKind):
    name = "wait"
    title = "Wait"
    description = "Waits the given number of seconds before the deployment goes on. No worker is busy meanwhile."
    idempotent = True
    scope = "batch"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "minimum": 0, "maximum": 86400, "description": "Seconds to wait."},
        },
        "required": ["seconds"],
        "additionalProperties": False,
    }

    def run(self, ctx: StepContext) -> StepResult:
        """Never sleeps: the first run fixes the end of the wait; the engine runs the step again at resume_at."""
        current = now(ctx)
        until_text = ctx.state.get("until")
        if until_text:
            until = datetime.fromisoformat(until_text)
        else:
            delay = float(ctx.params["seconds"])
            if delay <= 0:
                return StepResult(StepStatus.SUCCEEDED, "Nothing to wait for.")
            until = current + timedelta(seconds=delay)
            ctx.log(f"Waiting {seconds(delay)}, until {until.isoformat()}.")
        state = {"until": until.isoformat()}
        if current >= until:
            return StepResult(StepStatus.SUCCEEDED, f"Waited until {state['until']}.", state=state)
        return StepResult(StepStatus.WAITING, f"Waiting until {state['until']}.", state=state, resume_at=until)
