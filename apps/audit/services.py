"""Writing and verifying the audit trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

from apps.core.context import current

from .models import GENESIS_HASH, AuditEvent

# Any constant: the key of the PostgreSQL advisory lock that serializes appends to the chain.
_CHAIN_LOCK_KEY = 0x52480001


def _lock_chain() -> None:
    """Serialize appends so each event links to the one committed before it.

    PostgreSQL: a transaction-scoped advisory lock, held until the caller's transaction
    commits. SQLite: the IMMEDIATE transaction already holds the database's write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def audit_record(
    *,
    verb: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    summary: str = "",
    details: dict[str, Any] | None = None,
    actor=None,
    token=None,
) -> AuditEvent:
    """Append one event to the audit trail, in the caller's transaction.

    The actor, channel, IP and API token come from the action context unless given. Never
    put secret values in `details`: the trail is readable by auditors and exported.
    """
    ctx = current()
    actor = actor if actor is not None else ctx.user
    token = token if token is not None else ctx.token
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        summary = summary or str(target)
    details_json = json.dumps(
        details or {}, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # No savepoint: the event belongs to the caller's transaction, and a savepoint would cost two
    # round trips while the chain lock is held.
    with transaction.atomic(savepoint=False):
        _lock_chain()
        prev_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        event = AuditEvent(
            actor=actor,
            actor_name=actor.get_username() if actor is not None else "system",
            token_prefix=token.prefix if token is not None else "",
            channel=ctx.channel,
            ip=ctx.ip or "",
            verb=verb,
            object_type=object_type,
            object_id=str(object_id),
            summary=summary[:255],
            details_json=details_json,
            prev_hash=prev_hash,
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainReport:
    """Outcome of walking the chain: `broken_id` is the first event that fails, with the reason."""

    checked: int
    head_hash: str
    broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def audit_chain_check(*, chunk_size: int = 2000) -> ChainReport:
    """Walk every event in order and recompute its hash and link. Read-only."""
    prev_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != prev_hash:
            return ChainReport(
                checked, prev_hash, event.pk, "its prev_hash does not match the event before it (removed or altered)"
            )
        if event.compute_hash() != event.hash:
            return ChainReport(checked, prev_hash, event.pk, "its content does not match its hash (edited)")
        prev_hash = event.hash
        checked += 1
    return ChainReport(checked, prev_hash)


def audit_chain_verify() -> ChainReport:
    """Check the chain and record the outcome as an `audit.verified` or `audit.broken` event."""
    report = audit_chain_check()
    details = {"checked": report.checked, "head_hash": report.head_hash}
    if report.ok:
        audit_record(verb="audit.verified", object_type="audit.auditevent", details=details)
    else:
        details.update(broken_id=report.broken_id, reason=report.reason)
        audit_record(verb="audit.broken", object_type="audit.auditevent", object_id=report.broken_id, details=details)
    return report
