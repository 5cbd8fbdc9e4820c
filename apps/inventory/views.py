"""Inventory pages: search (where does a build run), an environment's inventory tab with time travel and the
drift check, a target's installation history, and the comparison of two environments with its downloads."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.core.permissions import can
from apps.core.ui import call_service
from apps.environments.selectors import environments_visible_to
from apps.environments.views import _tab_context, _visible

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


@login_required
def search(request):
    """Where a build runs: `<application> <version>`, a version, an application, a digest or a commit."""
    query = request.GET.get("q", "").strip()[:200]
    artifacts = list(search_artifacts(request.user, query)) if query else []
    locations: dict[int, list] = {artifact.pk: [] for artifact in artifacts}
    if artifacts:
        rows = visible_installations(request.user, artifact__in=artifacts).order_by("environment__name", "target__name")
        for installation in rows:
            locations[installation.artifact_id].append(installation)
    context = {
        "query": query,
        "results": [(artifact, locations[artifact.pk]) for artifact in artifacts],
        "drifted": drifted_observations(environment__in=environments_visible_to(request.user).values("pk"))[:20],
    }
    return render(request, "inventory/search.html", context)


def _moment(value: str, environment) -> datetime | None:
    """A datetime-local value read in the environment's time zone (an explicit offset wins)."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo(environment.timezone))
    return moment


@login_required
def environment_inventory(request, slug: str):
    """What runs in the environment (now, or at `?at=` from the installation records) and what its targets
    said they run."""
    environment = _visible(request, slug)
    context = _tab_context(request, environment, "inventory")
    at_text = request.GET.get("at", "").strip()
    at = _moment(at_text, environment) if at_text else None
    if at_text and at is None:
        context["at_error"] = "Give a date and time such as 2026-11-27T14:30."
    if at is not None:
        installations = installations_at(environment, at)
    else:
        installations = visible_installations(request.user, environment=environment).order_by(
            "application__slug", "target__name"
        )
    observations = observations_of(environment)
    rows = [(i, observations.get((i.target_id, i.application_id))) for i in installations]
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
    environment = _visible(request, slug)
    readings = call_service(
        request,
        services.drift_check,
        "Drift check done.",
        actor=request.user,
        environment=environment,
    )
    for reading in (readings or [])[:MESSAGES_SHOWN]:
        if reading.problem:
            messages.warning(request, f"{reading.target.name}: {reading.problem}.")
    return redirect("inventory:environment", slug=environment.slug)


@login_required
def target_history(request, slug: str, pk: int):
    """Every installation on one target, newest first, with its last readings."""
    environment = _visible(request, slug)
    target = get_object_or_404(environment.targets, pk=pk)
    context = _tab_context(request, environment, "inventory")
    context.update(
        target=target,
        timeline=target_timeline(target)[:200],
        observations=target.observations.select_related("application", "expected").order_by("application__slug"),
    )
    return render(request, "inventory/target.html", context)


@login_required
def compare(request):
    """Two environments side by side; `format=json` or `format=md` downloads the comparison."""
    environments = list(environments_visible_to(request.user))
    by_slug = {e.slug: e for e in environments}
    left, right = by_slug.get(request.GET.get("left", "")), by_slug.get(request.GET.get("right", ""))
    comparison = compare_environments(request.user, left, right) if left and right else None
    if comparison is not None and request.GET.get("format") == "md":
        return markdown_response(comparison)
    if comparison is not None and request.GET.get("format") == "json":
        response = HttpResponse(json.dumps(comparison, indent=2, default=str), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="compare-{left.slug}-{right.slug}.json"'
        return response
    context = {
        "environments": environments,
        "left": left,
        "right": right,
        "comparison": comparison,
        "unknown": [side for side in ("left", "right") if request.GET.get(side) and request.GET[side] not in by_slug],
    }
    return render(request, "inventory/compare.html", context)
