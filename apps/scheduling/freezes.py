"""When freeze windows apply: their occurrences, evaluated in each window's time zone with python-dateutil.

A recurring window repeats its first occurrence's local start time and length: a weekly Friday
18:00-22:00 freeze in Europe/Berlin covers 17:00-21:00 UTC in winter and 16:00-20:00 UTC in summer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.db.models import Q, QuerySet

from .models import FreezeWindow

FOREVER = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def rule_error(rule: str) -> str | None:
    """Why an RRULE cannot be used (None when it can)."""
    try:
        rrulestr(rule, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError) as exc:
        return f"Not a valid RRULE: {exc}."
    return None


def occurrences(window: FreezeWindow, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's occurrences (UTC start, end) that overlap [start, end)."""
    if not window.rrule:
        ends = window.ends_at or FOREVER
        if window.starts_at < end and ends > start:
            yield window.starts_at, ends
        return
    zone = ZoneInfo(window.timezone)
    first = window.starts_at.astimezone(zone)
    length = window.ends_at.astimezone(zone).replace(tzinfo=None) - first.replace(tzinfo=None)
    rule = rrulestr(window.rrule, dtstart=first.replace(tzinfo=None))
    skipped = {datetime.fromisoformat(value).replace(tzinfo=None) for value in window.exdates}
    local_from = start.astimezone(zone).replace(tzinfo=None) - length
    local_to = end.astimezone(zone).replace(tzinfo=None)
    for local_start in rule.between(local_from, local_to, inc=True):
        if local_start in skipped:
            continue
        occurrence_start = local_start.replace(tzinfo=zone).astimezone(UTC)
        occurrence_end = (local_start + length).replace(tzinfo=zone).astimezone(UTC)
        if occurrence_start < end and occurrence_end > start:
            yield occurrence_start, occurrence_end


def windows_for(environment_id: int) -> QuerySet[FreezeWindow]:
    """The active windows that apply to an environment."""
    return FreezeWindow.objects.filter(
        Q(all_environments=True) | Q(environments__pk=environment_id), active=True
    ).distinct()


def covering(
    windows: Iterable[FreezeWindow], start: datetime, end: datetime
) -> list[tuple[FreezeWindow, datetime, datetime]]:
    """(window, occurrence start, occurrence end) of every occurrence overlapping [start, end)."""
    return [(window, s, e) for window in windows for s, e in occurrences(window, start, end)]


def frozen_at(environment_id: int, moment: datetime) -> tuple[FreezeWindow, datetime] | None:
    """The freeze in force at `moment`, and when that occurrence ends; None when not frozen."""
    found = covering(windows_for(environment_id), moment, moment + timedelta(microseconds=1))
    if not found:
        return None
    window, _, ends = max(found, key=lambda item: item[2])
    return window, ends


def describe(window: FreezeWindow, ends: datetime) -> str:
    """ "Frozen by “Black Friday” until 2026-11-28 22:00 UTC (reason)" for status messages."""
    until = "it is unlocked" if ends >= FOREVER else f"{ends:%Y-%m-%d %H:%M} UTC"
    return f"Frozen by “{window.title}” until {until}: {window.reason}"
