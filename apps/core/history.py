"""django-simple-history wired to the action context, and read back for history pages.

Use `history = history()` on every domain model (instead of `HistoricalRecords()`): its
history rows then carry the acting user, channel and client IP, also in workers where
there is no request. Add `AppendOnly("historical<model>")` to the migration that creates
the history table (see `apps.core.migration_ops`).
"""

from dataclasses import dataclass, field
from typing import Any

from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from .context import current
from .models import HistoryContext


def _context_user(instance=None, request=None, **kwargs):
    return current().user


def history(**kwargs) -> HistoricalRecords:
    """HistoricalRecords whose rows record the actor, channel and IP of the change."""
    kwargs.setdefault("bases", [HistoryContext])
    return HistoricalRecords(get_user=_context_user, **kwargs)


@receiver(pre_create_historical_record)
def _stamp_channel_and_ip(sender, history_instance, **kwargs) -> None:
    ctx = current()
    if isinstance(history_instance, HistoryContext):
        history_instance.history_channel = ctx.channel
        history_instance.history_ip = ctx.ip or ""


# --- Reading history (the History tabs) ----------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One changed field of a history row; `hidden` when its values must not be shown (secrets)."""

    field: str
    old: Any
    new: Any
    hidden: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    """A django-simple-history row with what it changed relative to the object's previous row."""

    record: Any  # the historical row: history_date, history_user, history_channel, history_ip...
    kind: str  # "created", "changed" or "deleted"
    subject: str  # what the row is about: "environment", "target", "variable"...
    label: str  # the object's name at that time
    changes: list[FieldChange] = field(default_factory=list)


HISTORY_KINDS = {"+": "created", "~": "changed", "-": "deleted"}


def history_entries(
    records,
    *,
    subject: str,
    label=str,
    secret=lambda record: False,
    values=None,
    skip: frozenset = frozenset(),
    m2m: dict[str, dict[int, list]] | None = None,
) -> list[HistoryEntry]:
    """Turn historical rows (any order) into entries, each diffed against the same object's previous row;
    a creation lists the fields it set (those in `skip`, such as the parent, left out).

    `secret(record)` says whether a row's `value` is a secret (ciphertext): its value is then
    reported as changed, never shown. `values` maps (field, raw value) to what to display
    (foreign-key ids to names). `m2m` gives the many-to-many fields' values of each row,
    `{field: {history_id: [values]}}`, read by the caller in one query: they are compared here,
    as django-simple-history's diff would query twice per row. No queries beyond evaluating `records`.
    """
    m2m = m2m or {}
    shown = values or (lambda field, value: value)

    def display(field_name, value):
        value = shown(field_name, value)
        if isinstance(value, dict):  # labels, attributes
            return ", ".join(f"{key}={item}" for key, item in value.items()) or "{}"
        return value

    previous: dict[Any, Any] = {}
    entries = []
    for record in sorted(records, key=lambda r: (r.history_date, r.history_id)):
        kind = HISTORY_KINDS.get(record.history_type, "changed")
        before = previous.get(record.id)
        changes = []
        if kind == "created":
            hide = secret(record)
            for model_field in record.tracked_fields:
                raw = getattr(record, model_field.attname)
                if (
                    not model_field.editable
                    or model_field.primary_key
                    or model_field.name in skip
                    or raw is None
                    or raw is False
                    or raw in ("", {}, [])
                ):
                    continue
                hidden = hide and model_field.name == "value"
                changes.append(
                    FieldChange(
                        field=model_field.name,
                        old=None,
                        new=None if hidden else display(model_field.name, raw),
                        hidden=hidden,
                    )
                )
            for name, rows in m2m.items():
                if rows.get(record.history_id):
                    changes.append(FieldChange(field=name, old=None, new=display(name, rows[record.history_id])))
        elif kind == "changed" and before is not None:
            hide = secret(record) or secret(before)
            for change in record.diff_against(before, excluded_fields=list(m2m)).changes:
                hidden = hide and change.field == "value"
                changes.append(
                    FieldChange(
                        field=change.field,
                        old=None if hidden else display(change.field, change.old),
                        new=None if hidden else display(change.field, change.new),
                        hidden=hidden,
                    )
                )
            for name, rows in m2m.items():
                old, new = rows.get(before.history_id, []), rows.get(record.history_id, [])
                if old != new:
                    changes.append(FieldChange(field=name, old=display(name, old), new=display(name, new)))
        previous[record.id] = record
        entries.append(HistoryEntry(record=record, kind=kind, subject=subject, label=label(record), changes=changes))
    return entries


def newest_first(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda e: (e.record.history_date, e.record.history_id), reverse=True)
