"""`manual_intervention`: stop the deployment until a person resumes or aborts it."""

from __future__ import annotations

from typing import Any

from ._util import SCHEMA_DIALECT
from .base import StepContext, StepKind, StepResult, StepStatus, register


@register
class ManualIntervention(StepKind):
    name = "manual_intervention"
    title = "Manual intervention"
    description = (
        "Pauses the deployment and shows the instructions; a person with the right to deploy resumes it "
        "(the step then succeeds) or aborts it."
    )
    idempotent = True
    scope = "batch"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "instructions": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "What the person should check or do before resuming.",
            },
        },
        "required": ["instructions"],
        "additionalProperties": False,
    }

    def run(self, ctx: StepContext) -> StepResult:
        instructions: str = ctx.params["instructions"]
        ctx.log(f"Waiting for a person: {instructions}")
        return StepResult(StepStatus.PAUSED, instructions)
