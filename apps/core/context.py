"""Who is acting, through which channel, from where.

Every write records an actor, a channel and a client IP (DESIGN.md §4). The request
middleware, the Celery task hooks and management commands set a context; services,
history and audit read it with `current()`. A ContextVar keeps concurrent requests and
tasks in threads apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from django.http import HttpRequest

    from apps.accounts.models import ApiToken, User


class Channel(models.TextChoices):
    UI = "ui", "Browser"  # a signed-in person in the web UI
    API = "api", "API"  # a REST call, with a token or the browser session
    WORKER = "worker", "Worker"  # a Celery task
    SCHEDULER = "scheduler", "Scheduler"  # a task sent by Celery beat
    CLI = "cli", "Command line"  # manage.py commands and shells


@dataclass(frozen=True)
class ActionContext:
    """The actor, channel and IP of the current unit of work.

    For a request, the user and token are read from the request when asked for, because
    DRF authenticates tokens after the middleware has run.
    """

    channel: str
    ip: str | None = None
    user_override: Any = None
    request: HttpRequest | None = None

    @property
    def user(self) -> User | None:
        """The authenticated user, or None for the system."""
        user = getattr(self.request, "user", None) if self.request is not None else self.user_override
        return user if user is not None and user.is_authenticated else None

    @property
    def token(self) -> ApiToken | None:
        """The API token the request authenticated with, if any."""
        from apps.accounts.models import ApiToken

        auth = getattr(self.request, "auth", None)
        return auth if isinstance(auth, ApiToken) else None


_current: ContextVar[ActionContext | None] = ContextVar("releasehub_action_context", default=None)
_DEFAULT = ActionContext(channel=Channel.CLI)


def current() -> ActionContext:
    """The context of the running request, task or command (`cli` with no actor outside any)."""
    return _current.get() or _DEFAULT


@contextmanager
def acting(*, channel: str, user=None, ip: str | None = None, request=None) -> Iterator[ActionContext]:
    """Run a block as `user` through `channel`; restores the previous context on exit."""
    ctx = ActionContext(channel=channel, ip=ip, user_override=user, request=request)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def push(ctx: ActionContext):
    """Set a context without a `with` block (Celery's prerun/postrun hooks); returns the reset token."""
    return _current.set(ctx)


def pop(token) -> None:
    _current.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry added by the outermost trusted proxy.

    Only RELEASEHUB_TRUSTED_PROXIES entries from the right of X-Forwarded-For are trusted;
    anything further left was written by the client and could be forged.
    """
    candidate = request.META.get("REMOTE_ADDR", "")
    hops = settings.RELEASEHUB_TRUSTED_PROXIES
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
