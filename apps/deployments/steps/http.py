"""`http`: call an HTTP endpoint (a webhook, a load balancer API...) and check the status it answers."""

from __future__ import annotations

import time
from typing import Any

import requests

from ._util import HEADERS, HTTP_URL, SCHEMA_DIALECT, http_session, read_body, seconds, status_list
from .base import StepContext, StepKind, StepResult, StepStatus, register

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
LOGGED_BODY = 2048  # bytes of each response body copied into the step log


@register
class Http(StepKind):
    name = "http"
    title = "HTTP request"
    description = (
        "Sends one HTTP request and succeeds when the response status is one of expected_status, "
        "retrying failed attempts (unexpected status or no connection) up to `retries` times."
    )
    idempotent = False  # a POST may not be
    scope = "target"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "url": {**HTTP_URL, "description": "http:// or https:// URL."},
            "method": {"enum": METHODS, "default": "GET"},
            "headers": {**HEADERS, "description": "Request headers."},
            "body": {"type": "string", "maxLength": 1048576, "description": "Request body, sent as UTF-8."},
            "expected_status": status_list([200, 201, 202, 204], "Statuses that count as success."),
            "retries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 20,
                "default": 0,
                "description": "Further attempts after a failed one.",
            },
            "retry_delay": {
                "type": "number",
                "minimum": 0,
                "maximum": 60,
                "default": 2,
                "description": "Seconds between attempts.",
            },
            "timeout": {
                "type": "number",
                "minimum": 1,
                "maximum": 300,
                "default": 30,
                "description": "Seconds each attempt may take to connect and to receive data.",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    def budget(self, params: dict[str, Any]) -> float:
        """Every attempt may take `timeout`, with `retry_delay` between them."""
        retries = int(params.get("retries", 0))
        return float(params.get("timeout", 30)) * (retries + 1) + float(params.get("retry_delay", 2)) * retries

    def run(self, ctx: StepContext) -> StepResult:
        params = ctx.params
        url: str = params["url"]
        if not url.startswith(("http://", "https://")):
            return StepResult(StepStatus.FAILED, "url must start with http:// or https://.")
        method: str = params.get("method", "GET")
        expected = set(params.get("expected_status", [200, 201, 202, 204]))
        attempts = int(params.get("retries", 0)) + 1
        delay = float(params.get("retry_delay", 2))
        timeout = float(params.get("timeout", 30))
        body = params.get("body")
        data = body.encode() if body is not None else None
        headers: dict[str, str] = params.get("headers") or {}
        for header, value in headers.items():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                return StepResult(StepStatus.FAILED, f"Header {header} has characters HTTP headers cannot carry.")
        deadline = time.monotonic() + ctx.timeout

        outcome = ""
        attempt = 0
        with http_session() as session:
            for attempt in range(1, attempts + 1):
                ctx.log(f"{method} {url} (attempt {attempt}/{attempts})")
                try:
                    response = session.request(
                        method,
                        url,
                        headers=headers,
                        data=data,
                        timeout=min(timeout, max(deadline - time.monotonic(), 0.1)),
                        stream=True,
                    )
                except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests cannot parse
                    ctx.log(f"Request failed: {exc}")
                    outcome = f"request failed ({type(exc).__name__})"
                else:
                    with response:
                        ctx.log(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
                        try:
                            text, truncated = read_body(response, LOGGED_BODY) if method != "HEAD" else ("", False)
                        except requests.RequestException as exc:
                            text, truncated = f"(reading the body failed: {exc})", False
                    if text:
                        ctx.log(text + (" [...]" if truncated else ""))
                    if response.status_code in expected:
                        return StepResult(StepStatus.SUCCEEDED, f"HTTP {response.status_code}.")
                    outcome = f"HTTP {response.status_code}, expected {', '.join(map(str, sorted(expected)))}"
                if attempt == attempts:
                    break
                if time.monotonic() + delay >= deadline:
                    ctx.log(f"No time left for another attempt (step timeout {seconds(ctx.timeout)}).")
                    break
                ctx.log(f"Retrying in {seconds(delay)}.")
                time.sleep(delay)
        return StepResult(StepStatus.FAILED, f"{outcome} after {attempt} attempt{'s' if attempt > 1 else ''}.")
