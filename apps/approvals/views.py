"""Approval pages: the inbox of deployments waiting for people, in three tabs.

The lists come from apps.approvals.selectors, which apply the same rules as the services, so a row
in "Waiting for me" is one the person may approve or reject on the deployment's page. Decisions
themselves are taken on the deployment page (apps.deployments.views), next to the plan they bind to.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .selectors import decided_by, pending_visible_to, waiting_for

PAGE_SIZE = 50

# tab name -> (the selector of its rows, its title)
TABS = {
    "waiting": (waiting_for, "Waiting for me"),
    "decided": (decided_by, "Decided"),
    "pending": (pending_visible_to, "All pending"),
}


def duration_words(duration: timedelta) -> str:
    """A policy's expiry for people: "30 minutes", "24 hours", "2 days", "1 day and 6 hours"."""
    minutes = round(duration.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = ((days, "day"), (hours, "hour"), (minutes, "minute"))
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in units if n]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else "less than a minute"


def mark_overdue(rows: list) -> list:
    """Set `overdue` on each request whose expiry time has passed (the beat task rejects it soon)."""
    now = timezone.now()
    for row in rows:
        row.overdue = row.expires_at is not None and row.expires_at <= now
    return rows


def _inbox(request: HttpRequest, tab: str) -> HttpResponse:
    """One tab of the inbox, 50 rows a page, with every tab's count. A constant number of queries."""
    user = request.user
    selector, title = TABS[tab]
    page = Paginator(selector(user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = mark_overdue(list(page.object_list))
    counts = {name: page.paginator.count if name == tab else TABS[name][0](user).count() for name in TABS}
    yours: set[int] = set()
    if tab == "pending" and rows:  # which of these the user may decide on
        yours = set(waiting_for(user).filter(pk__in=[row.pk for row in rows]).values_list("pk", flat=True))
    context = {
        "tab": tab,
        "title": title,
        "tabs": [(name, TABS[name][1], counts[name]) for name in TABS],
        "page": page,
        "rows": rows,
        "yours": yours,
    }
    return render(request, "approvals/inbox.html", context)


@login_required
def inbox(request):
    """Deployments waiting for the user's decision: they may approve them, and have not decided yet."""
    return _inbox(request, "waiting")


@login_required
def decided(request):
    """Requests the user approved or rejected, their latest decision first, with where each stands now."""
    return _inbox(request, "decided")


@login_required
def pending(request):
    """Every deployment the user may view that waits for approval, whoever may decide on it."""
    return _inbox(request, "pending")
