"""`health_check`: poll a URL until the target answers healthy, or give up after a timeout."""

from __future__ import annotations

import time
from typing import Any

import requests

from ._util import HTTP_URL, SCHEMA_DIALECT, http_session, read_body, seconds, status_list
from .base import StepContext, StepKind, StepResult, StepStatus, register

BODY_LIMIT = 1024 * 1024  # bytes of the body searched for expected_body
LOGGED_BODY = 200  # bytes of an unhealthy answer copied into the log


@register
class HealthCheck(StepKind):
    name = "health_check"
    title = "Health check"
    description = (
        "GETs a URL (default: the target's health check URL) every `interval` seconds until it answers "
        "one of expected_status, and contains expected_body if given; fails once `timeout` seconds passed."
    )
    idempotent = True
    scope = "target"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "url": {**HTTP_URL, "description": "URL to GET. Default: the target's health check URL."},
            "expected_status": status_list([200], "Statuses that count as healthy."),
            "expected_body": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "Text the response body must contain.",
            },
            "timeout": {
                "type": "number",
                "minimum": 1,
                "maximum": 3600,
                "default": 60,
                "description": "Seconds to wait for the target to become healthy, in total.",
            },
            "interval": {
                "type": "number",
                "minimum": 0.1,
                "maximum": 60,
                "default": 2,
                "description": "Seconds between attempts.",
            },
            "request_timeout": {
                "type": "number",
                "minimum": 0.1,
                "maximum": 60,
                "default": 5,
                "description": "Seconds one attempt may take.",
            },
        },
        "additionalProperties": False,
    }

    def run(self, ctx: StepContext) -> StepResult:
        params = ctx.params
        url = params.get("url") or (ctx.target or {}).get("health_check_url")
        if not url:
            return StepResult(StepStatus.FAILED, "No url given and the target has no health check URL.")
        if not url.startswith(("http://", "https://")):
            return StepResult(StepStatus.FAILED, "url must start with http:// or https://.")
        expected = set(params.get("expected_status", [200]))
        expected_body: str | None = params.get("expected_body")
        timeout = min(float(params.get("timeout", 60)), ctx.timeout)
        interval = float(params.get("interval", 2))
        request_timeout = float(params.get("request_timeout", 5))

        ctx.log(f"Checking {url} (up to {seconds(timeout)}, every {seconds(interval)})")
        start = time.monotonic()
        deadline = start + timeout
        attempt = 0
        last = ""
        with http_session() as session:
            while True:
                attempt += 1
                healthy, last, detail = self._probe(session, url, expected, expected_body, request_timeout, deadline)
                elapsed = time.monotonic() - start
                if healthy:
                    ctx.log(f"Healthy after {attempt} attempt{'s' if attempt > 1 else ''} ({elapsed:.1f}s).")
                    return StepResult(StepStatus.SUCCEEDED, f"Healthy after {attempt} attempt(s).")
                ctx.log(f"Attempt {attempt}: {last}" + (f": {detail}" if detail else ""))
                remaining = deadline - time.monotonic()
                if remaining <= interval:
                    break
                time.sleep(interval)
        return StepResult(StepStatus.FAILED, f"Not healthy after {seconds(timeout)} ({attempt} attempts): {last}.")

    @staticmethod
    def _probe(
        session: requests.Session,
        url: str,
        expected: set[int],
        expected_body: str | None,
        request_timeout: float,
        deadline: float,
    ) -> tuple[bool, str, str]:
        """One GET: (healthy, the outcome in a few words, a body excerpt for the log)."""
        try:
            response = session.get(
                url, timeout=min(request_timeout, max(deadline - time.monotonic(), 0.1)), stream=True
            )
        except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests cannot parse
            return False, f"request failed ({type(exc).__name__})", str(exc)
        with response:
            limit = BODY_LIMIT if expected_body else LOGGED_BODY
            try:
                text, _ = read_body(response, limit)
            except requests.RequestException as exc:
                return False, f"reading the body failed ({type(exc).__name__})", str(exc)
        status = response.status_code
        excerpt = text[:LOGGED_BODY].strip()
        if status not in expected:
            return False, f"HTTP {status}", excerpt
        if expected_body and expected_body not in text:
            return False, f"HTTP {status} without the expected body", excerpt
        return True, f"HTTP {status}", ""
