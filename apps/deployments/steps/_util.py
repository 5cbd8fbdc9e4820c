"""Helpers shared by several step kinds: the clock, schema fragments and reading HTTP responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from .base import StepContext

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# An absolute http(s) URL. Checked again on the rendered value at run time.
HTTP_URL: dict[str, Any] = {"type": "string", "minLength": 8, "maxLength": 2048, "pattern": r"^https?://[^\s/?#]+\S*$"}

# Header names are RFC 9110 tokens; values are plain strings without line breaks.
HEADERS: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", "maxLength": 256},
    "additionalProperties": {"type": "string", "maxLength": 8192, "pattern": r"^[^\r\n]*$"},
    "maxProperties": 100,
}

USER_AGENT = "ReleaseHub-deployer"


def status_list(default: list[int], description: str) -> dict[str, Any]:
    """Schema of a non-empty list of distinct HTTP status codes."""
    return {
        "type": "array",
        "items": {"type": "integer", "minimum": 100, "maximum": 599},
        "minItems": 1,
        "maxItems": 50,
        "uniqueItems": True,
        "default": default,
        "description": description,
    }


def now(ctx: StepContext) -> datetime:
    """The run's clock: ctx.now when the engine (or a test) provides one, else UTC wall time."""
    return ctx.now() if ctx.now is not None else datetime.now(UTC)


def http_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def read_body(response: requests.Response, limit: int) -> tuple[str, bool]:
    """At most `limit` bytes of a streamed response's body, decoded; and whether there was more.

    Reading only a prefix keeps a step from downloading a huge body just to log a few lines of it.
    """
    chunks: list[bytes] = []
    size = 0
    truncated = False
    for chunk in response.iter_content(chunk_size=8192):
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            truncated = True
            break
        chunks.append(chunk)
        size += len(chunk)
    encoding = response.encoding or "utf-8"
    try:
        text = b"".join(chunks).decode(encoding, errors="replace")
    except LookupError:  # an unknown charset in Content-Type
        text = b"".join(chunks).decode("utf-8", errors="replace")
    return text, truncated


def seconds(value: float) -> str:
    """A duration for messages: `5s`, `0.5s`, `90s`."""
    return f"{value:g}s"
