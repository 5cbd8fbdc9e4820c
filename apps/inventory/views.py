"""Inventory pages: search (where does a build run), an environment's inventory tab with time travel and the
drift check, a target's installation history, and the comparison of two environments with its downloads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.core.permissions import can
from apps.core.ui import call_service
from apps.environments.selectors import environments_visible_to
from apps.environments.views import tab_context, visible_or_404

from . import services
from .api.views import markdown_response
from .compare import compare_environments
from .selectors import (
    drifted_observations,
    installations_at,
    observations_of,
    search_artifacts,
    target_timeline,
    visible_installations,
)

MESSAGES_SHOWN = 10
DRIFTED_SHOWN = 20
TIMELINE_SHOWN = 200
# Time travel: years every time zone can show.
MIN_YEAR, MAX_YEAR = 2, 9998


def _param(request, name: str, limit: int = 200) -> str:
    """A query parameter, trimmed; one holding a NUL character (which no database column can) reads as absent."""
    value = request.GET.get(name, "")
    return "" if "\x00" in value else value.strip()[:limit]


@login_required
def search(request):
    """Where a build runs: `<application> <version>`, a version, an application, a digest or a commit."""
    query = _param(request, "q")
    artifacts = list(search_artifacts(request.user, query)) if query else []
    locations: dict[int, list] = {artifact.pk: [] for artifact in artifacts}
    if artifacts:
        rows = visible_installations(request.user, artifact__in=artifacts).order_by("environment__name", "target__name")
        for installation in rows:
            locations[installation.artifact_id].append(installation)
    context = {
        "query": query,
        "results": [(artifact, locations[artifact.pk]) for artifact in artifacts],
        "drifted": drifted_observations(request.user)[:DRIFTED_SHOWN],
    }
    return render(request, "inventory/search.html", context)


def _moment(value: str, environment) -> datetime | None:
    """A datetime-local value read in the environment's time zone (an explicit offset wins); None when it is
    not a date and time, or one so far out that it could not be shown in every time zone."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo(environment.timezone))
    return moment


@login_required
def environment_inventory(request, slug: str):
    """What runs in the environment (now, or at `?at=` from the installation records) and what its targets
    said they run."""
    environment = visible_or_404(request, slug)
    context = tab_context(request, environment, "inventory")
    at_text = _param(request, "at", 64)
    at = _moment(at_text, environment) if at_text else None
    if at_text and at is None:
        context["at_error"] = "Give a date and time such as 2026-11-27T14:30."
    if at is not None:
        installations = list(installations_at(request.user, environment, at))
    else:
        installations = list(
            visible_installations(request.user, environment=environment).order_by("application__slug", "target__name")
        )
    observations = {(o.target_id, o.application_id): o for o in observations_of(request.user, environment=environment)}
    rows = []
    for installation in installations:
        observation = observations.get((installation.target_id, installation.application_id))
        stale = observation is not None and observation.observed_at < installation.since
        rows.append((installation, observation, stale))
    installed = {(i.target_id, i.application_id) for i in installations}
    context.update(
        at=at,
        at_text=at_text,
        rows=rows,
        unrecorded=[o for key, o in observations.items() if key not in installed and o.drifted],
        drifted=sum(1 for o in observations.values() if o.drifted),
        can_check=can(request.user, "deploy", environment),
        has_health_urls=environment.targets.exclude(health_check_url="").exists(),
    )
    return render(request, "inventory/environment.html", context)


@login_required
@require_POST
def environment_drift_check(request, slug: str):
    environment = visible_or_404(request, slug)
    readings = call_service(
        request,
        services.drift_check,
        "Drift check done.",
        actor=request.user,
        environment=environment,
    )
    unread: dict[str, list[str]] = {}
    for reading in readings or []:
        if reading.problem:
            unread.setdefault(reading.problem, []).append(reading.target.name)
    for problem, names in unread.items():
        shown = ", ".join(names[:MESSAGES_SHOWN]) + (
            f" and {len(names) - MESSAGES_SHOWN} more" if len(names) > MESSAGES_SHOWN else ""
        )
        messages.warning(request, f"Not read: {shown}: {problem}.")
    return redirect("inventory:environment", slug=environment.slug)


@login_required
def target_history(request, slug: str, pk: int):
    """Every installation on one target, newest first, with its last readings."""
    environment = visible_or_404(request, slug)
    target = get_object_or_404(environment.targets, pk=pk)
    context = tab_context(request, environment, "inventory")
    context.update(
        target=target,
        timeline=target_timeline(request.user, target)[:TIMELINE_SHOWN],
        observations=observations_of(request.user, target=target),
    )
    return render(request, "inventory/target.html", context)


@login_required
def compare(request):
    """Two environments side by side; `format=md` downloads the comparison as a report (JSON is the API's)."""
    environments = list(environments_visible_to(request.user))
    by_slug = {e.slug: e for e in environments}
    left, right = by_slug.get(_param(request, "left")), by_slug.get(_param(request, "right"))
    comparison = compare_environments(request.user, left, right) if left and right else None
    if comparison is not None and request.GET.get("format") == "md":
        return markdown_response(comparison)
    context = {
        "environments": environments,
        "left": left,
        "right": right,
        "comparison": comparison,
        "unknown": [
            side for side in ("left", "right") if request.GET.get(side) and _param(request, side) not in by_slug
        ],
    }
    return render(request, "inventory/compare.html", context)
