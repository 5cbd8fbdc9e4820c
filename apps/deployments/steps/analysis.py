"""`analysis`: the gate after a canary stage or a blue/green batch. For `seconds`, it probes the health
URLs of the targets that took the new release (and optionally a JSON metrics URL against a condition)
every `interval`, and fails as soon as the share of failed probes exceeds `max_failure_ratio`.

One run is one round of probes; between rounds the step waits without holding a worker. Every
round is kept in the step's state (the deployment page draws it), so the evidence outlives a
rollback.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import requests
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from ._util import HTTP_URL, SCHEMA_DIALECT, http_session, now, read_body, seconds, status_list
from .base import StepContext, StepKind, StepResult, StepStatus, register

PARALLEL = 16  # probes in flight at once
MAX_SAMPLES = 500  # rounds kept in the state (the oldest are dropped beyond)
METRICS_LIMIT = 64 * 1024  # bytes of a metrics answer read
_expressions = SandboxedEnvironment(undefined=StrictUndefined)


def condition_error(condition: str) -> str | None:
    """Why a metrics condition cannot be evaluated (its syntax), or None."""
    try:
        _expressions.compile_expression(condition)
    except TemplateError as exc:
        return f"Not a valid expression: {exc.message}"
    return None


def evaluate(condition: str, metrics: Any) -> tuple[bool, str]:
    """(whether `condition` holds on the metrics object, what was seen). A missing field does not hold."""
    if not isinstance(metrics, dict):
        return False, "the metrics answer is not a JSON object"
    try:
        holds = bool(_expressions.compile_expression(condition, undefined_to_none=False)(**metrics))
    except Exception as exc:  # an undefined field, a type mismatch: the condition cannot hold
        return False, f"{condition} could not be evaluated ({exc})"
    return holds, f"{condition} {'holds' if holds else 'does not hold'}"


@register
class Analysis(StepKind):
    name = "analysis"
    title = "Analysis gate"
    description = (
        "Probes the health URLs of the given targets (and a metrics URL) every `interval` seconds for `seconds` "
        "seconds; fails once more than max_failure_ratio of the probes failed."
    )
    in_templates = False
    idempotent = True
    scope = "batch"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "targets": {
                "type": "array",
                "maxItems": 10000,
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "url": HTTP_URL},
                    "required": ["name", "url"],
                    "additionalProperties": False,
                },
            },
            "seconds": {"type": "number", "minimum": 0, "maximum": 86400},
            "interval": {"type": "number", "minimum": 0.1, "maximum": 600, "default": 10},
            "max_failure_ratio": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1},
            "min_probes": {"type": "integer", "minimum": 1, "default": 1},
            "metrics_url": HTTP_URL,
            "metrics_condition": {"type": "string", "minLength": 1, "maxLength": 500},
            "expected_status": status_list([200], "Statuses that count as healthy."),
            "request_timeout": {"type": "number", "minimum": 0.1, "maximum": 60, "default": 5},
        },
        "required": ["targets", "seconds"],
        "additionalProperties": False,
    }

    def budget(self, params: dict[str, Any]) -> float | None:
        rounds = math.ceil(len(params.get("targets", [])) / PARALLEL) + 1  # the probes, then the metrics
        return float(params.get("request_timeout", 5)) * rounds + 5

    def run(self, ctx: StepContext) -> StepResult:
        params = ctx.params
        current = now(ctx)
        state = {"started": current.isoformat(), "probes": 0, "failures": 0, "samples": [], **ctx.state}
        started = datetime.fromisoformat(state["started"])
        if not ctx.state:
            ctx.log(
                f"Watching {len(params['targets'])} target(s) for {seconds(params['seconds'])}, "
                f"every {seconds(params.get('interval', 10))}; failing above "
                f"{params.get('max_failure_ratio', 0.1):.0%} failed probes."
            )
        sample = self._round(ctx, (current - started).total_seconds())
        state["samples"] = (state["samples"] + [sample])[-MAX_SAMPLES:]
        state["probes"] += sample["probes"]
        state["failures"] += sample["failures"]
        ratio = state["failures"] / state["probes"] if state["probes"] else 0.0
        ctx.log(
            f"Round at {sample['at']:.1f}s: {sample['failures']} of {sample['probes']} probe(s) failed"
            + (f" ({', '.join(sample['failed'])})" if sample["failed"] else "")
            + f"; {state['failures']} of {state['probes']} in all."
        )
        limit = float(params.get("max_failure_ratio", 0.1))
        if state["probes"] >= int(params.get("min_probes", 1)) and ratio > limit:
            return StepResult(
                StepStatus.FAILED,
                f"{state['failures']} of {state['probes']} probes failed ({ratio:.0%} > {limit:.0%}).",
                state=state,
            )
        end = started + timedelta(seconds=float(params["seconds"]))
        if current >= end:
            return StepResult(
                StepStatus.SUCCEEDED,
                f"Passed: {state['failures']} of {state['probes']} probes failed over {seconds(params['seconds'])}.",
                state=state,
            )
        resume = min(current + timedelta(seconds=float(params.get("interval", 10))), end)
        return StepResult(StepStatus.WAITING, "Analysing.", state=state, resume_at=resume)

    def _round(self, ctx: StepContext, at: float) -> dict[str, Any]:
        """Probe every target (in parallel) and the metrics URL once."""
        params = ctx.params
        expected = set(params.get("expected_status", [200]))
        timeout = float(params.get("request_timeout", 5))
        targets = params["targets"]
        failed: list[str] = []
        detail: dict[str, Any] = {}
        with http_session() as session:
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=PARALLEL)
            session.mount("http://", adapter)
            session.mount("https://", adapter)

            def probe(target: dict[str, str]) -> str | None:
                try:
                    with session.get(target["url"], timeout=timeout, stream=True) as response:
                        read_body(response, 1024)
                        return None if response.status_code in expected else f"HTTP {response.status_code}"
                except (requests.RequestException, ValueError) as exc:
                    return type(exc).__name__

            with ThreadPoolExecutor(max_workers=min(PARALLEL, max(len(targets), 1))) as pool:
                for target, problem in zip(targets, pool.map(probe, targets), strict=True):
                    if problem:
                        failed.append(f"{target['name']}: {problem}")
            probes = len(targets)
            if params.get("metrics_url"):
                probes += 1
                holds, seen, metrics = self._metrics(
                    session, params["metrics_url"], params["metrics_condition"], timeout
                )
                detail = {"metrics": metrics, "condition": seen}
                if not holds:
                    failed.append(f"metrics: {seen}")
        return {"at": round(at, 3), "probes": probes, "failures": len(failed), "failed": failed[:10], **detail}

    @staticmethod
    def _metrics(session: requests.Session, url: str, condition: str, timeout: float) -> tuple[bool, str, Any]:
        try:
            with session.get(url, timeout=timeout, stream=True) as response:
                text, _ = read_body(response, METRICS_LIMIT)
                if response.status_code != 200:
                    return False, f"HTTP {response.status_code}", None
        except (requests.RequestException, ValueError) as exc:
            return False, type(exc).__name__, None
        try:
            metrics = json.loads(text)
        except ValueError:
            return False, "the answer is not JSON", None
        holds, seen = evaluate(condition, metrics)
        kept = metrics if isinstance(metrics, dict) and len(text) <= 1024 else None
        return holds, seen, kept
