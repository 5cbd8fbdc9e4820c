"""Release pages: list (filtered by application, paginated), detail (summary, artifacts, deployments, plan
preview), history, and the forms (new release, notes, delete).

Pages read through selectors and the API's FilterSet, and write only through services: a domain error
becomes a message or a form error. A release whose application the user may not view is a 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.catalog.selectors import applications_visible_to
from apps.core.errors import NotFound, PermissionDenied, PolicyViolation, ReleaseHubError
from apps.core.permissions import can
from apps.core.ui import call_service, form_add_domain_error, page_or_fragment, query_without_page
from apps.deployments.engine.strategies import describe
from apps.deployments.models import Deployment
from apps.deployments.plans import phase_rows, plan_rows
from apps.deployments.selectors import deployments_visible_to
from apps.deployments.services import deployment_create, deployment_preview, promotion_effects
from apps.environments.selectors import environments_visible_to

from . import lifecycle, services
from .filters import ReleaseFilterSet
from .forms import DeployForm, ReleaseForm, ReleaseNotesForm
from .models import Release, ReleaseBlock
from .selectors import applications_for_releases, release_for, release_history, releases_visible_to

PAGE_SIZE = 50
ASIDE = {
    "title": "Good to know",
    "text": [
        "A release bundles builds of one application. Its primary artifact is the one deployment templates read "
        "as artifact.*; the version defaults to that artifact's.",
        "CI creates releases with POST /api/v1/releases/ and a token with the releases:write scope.",
        "Notes and artifacts can change until a deployment uses the release; from then on it is immutable.",
    ],
}


def _visible(request: HttpRequest, pk: int) -> Release:
    """The release if the user may view its application, else 404 (its existence stays hidden)."""
    try:
        return release_for(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def _tab_context(request: HttpRequest, release: Release, tab: str) -> dict:
    may_change = can(request.user, "register", release.application)
    return {
        "release": release,
        "application": release.application,
        "tab": tab,
        "can_change": may_change and not release.in_use,
        "may_register": may_change,
    }


@login_required
def release_list(request):
    """Visible releases, newest first, filtered with the API's FilterSet; 50 a page."""
    filterset = ReleaseFilterSet(request.GET or None, queryset=releases_visible_to(request.user))
    releases = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    context = {
        "filterset": filterset,
        "page": Paginator(releases, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query_without_page(request),
        "filtered": any(request.GET.get(name) for name in filterset.filters),
        "applications": applications_visible_to(request.user),
        "can_create": applications_for_releases(request.user).exists(),
    }
    return page_or_fragment(request, "releases/list.html", "releases/_results.html", context)


def _deploy_form(request: HttpRequest, data=None) -> DeployForm:
    return DeployForm(data, environments=environments_visible_to(request.user, "deploy"))


@login_required
def release_detail(request, pk: int):
    """Summary, artifacts in order, where it is deployed, and the deploy form with its plan preview."""
    release = _visible(request, pk)
    context = _tab_context(request, release, "summary")
    context["artifacts"] = [row.artifact for row in release.release_artifacts.all()]
    context["deployments"] = deployments_visible_to(request.user).filter(release=release)[:20]
    context["deploy_form"] = _deploy_form(request)
    context.update(_lifecycle_context(request, release))
    return render(request, "releases/detail.html", context)


def _lifecycle_context(request: HttpRequest, release: Release) -> dict:
    """The release's way through its lifecycle: per stage and environment, its latest deployment there and
    any block; the next stage and whether the user may promote into it (constant queries)."""
    stages = lifecycle.stages_of(release)
    if not stages:
        return {"stages": []}
    latest = {}
    for deployment in Deployment.objects.filter(release=release).order_by("environment_id", "-created_at"):
        latest.setdefault(deployment.environment_id, deployment)
    blocks = {b.environment_id: b for b in ReleaseBlock.objects.filter(release=release, lifted_at__isnull=True)}
    deployable = set(environments_visible_to(request.user, "deploy").values_list("pk", flat=True))
    manageable = set(environments_visible_to(request.user, "manage").values_list("pk", flat=True))
    next_stage, todo = lifecycle.next_stage(release)
    rows = [
        {
            "stage": stage,
            "is_next": next_stage is not None and stage.pk == next_stage.pk,
            "environments": [
                {
                    "environment": env,
                    "deployment": latest.get(env.pk),
                    "block": blocks.get(env.pk),
                    "may_unblock": env.pk in manageable,
                }
                for env in stage.environments.all()
            ],
        }
        for stage in stages
    ]
    may_promote = bool(todo) and all(env.pk in deployable for env in todo)
    return {"stages": rows, "next_stage": next_stage, "may_promote": may_promote}


@login_required
@require_POST
def release_promote(request, pk: int):
    """Deploy the release to its next stage (the Promote button)."""
    release = _visible(request, pk)
    made = call_service(
        request,
        lifecycle.promote,
        "Promoted.",
        actor=request.user,
        release=release,
        override_reason=request.POST.get("override_reason", ""),
    )
    if made and len(made) == 1:
        return redirect("deployments:detail", made[0].pk)
    return redirect("releases:detail", release.pk)


@login_required
@require_POST
def release_unblock(request, pk: int):
    """Lift the release's block in an environment (`manage` there, with a reason)."""
    release = _visible(request, pk)
    environment = environments_visible_to(request.user).filter(slug=request.POST.get("environment", "")).first()
    if environment is None:
        raise Http404("No such environment.")
    call_service(
        request,
        lifecycle.unblock,
        f"{release} may be deployed to {environment.name} again.",
        actor=request.user,
        release=release,
        environment=environment,
        reason=request.POST.get("reason", ""),
    )
    return redirect("releases:detail", release.pk)


@login_required
def release_plan_preview(request, pk: int):
    """The plan a deployment with the form's choices would run (htmx fragment): nothing is created."""
    release = _visible(request, pk)
    form = _deploy_form(request, request.GET)
    context = {"release": release, "deploy_form": form}
    if form.is_valid():
        try:
            plan, digest = deployment_preview(actor=request.user, release=release, **form.service_kwargs())
        except ReleaseHubError as exc:
            context["error"] = exc
        else:
            context.update(
                plan=plan,
                digest=digest,
                effects=promotion_effects(plan, digest, release=release, environment=form.cleaned_data["environment"]),
                rows=plan_rows(plan),
                phases=phase_rows(plan),
                strategy_summary=describe(plan["strategy"]),
            )
    return render(request, "releases/_plan_output.html", context)


@login_required
@require_POST
def release_deploy(request, pk: int):
    """Request a deployment of the release; on success, go and watch it."""
    release = _visible(request, pk)
    form = _deploy_form(request, request.POST)
    if form.is_valid():
        try:
            deployment = deployment_create(
                actor=request.user,
                release=release,
                **form.service_kwargs(),
                **form.request_kwargs(),
            )
        except PolicyViolation as exc:
            rules = ", ".join(exc.extra.get("rules", []))
            messages.error(request, f"Refused by policy ({rules}): {exc.detail}")
        except ReleaseHubError as exc:
            messages.error(request, exc.detail + "".join(f" {m}" for ms in (exc.fields or {}).values() for m in ms))
        else:
            messages.success(
                request, f"{deployment} of {release} to {deployment.environment.name}: {deployment.status}."
            )
            return redirect("deployments:detail", deployment.pk)
    else:
        messages.error(
            request,
            "Check the deployment form: "
            + "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()),
        )
    return redirect("releases:detail", release.pk)


@login_required
def release_history_tab(request, pk: int):
    release = _visible(request, pk)
    context = _tab_context(request, release, "history")
    context.update(
        page=Paginator(release_history(release), PAGE_SIZE).get_page(request.GET.get("page")),
        audit_query=urlencode({"object_type": "releases.release", "object_id": release.pk}),
    )
    return render(request, "releases/history.html", context)


@login_required
def release_create(request):
    """A new release of an application the user may register on. Choosing the application (htmx) reloads the
    artifact choices only."""
    applications = applications_for_releases(request.user)
    if not applications:
        messages.error(request, "You may not create releases: that needs the register permission on an application.")
        return redirect("releases:list")
    initial = {
        "application": request.GET.get("application") or (applications[0].slug if len(applications) == 1 else "")
    }
    form = ReleaseForm(request.POST or None, initial=initial, applications=applications)
    if request.method == "POST" and form.is_valid():
        try:
            release = services.release_create(actor=request.user, **form.service_arguments())
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("releases:list")
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Release {release.version} of {release.application.name} created.")
            return redirect("releases:detail", pk=release.pk)
    context = {"form": form, "title": "New release", "submit": "Create release", "aside": ASIDE}
    if request.method == "GET":
        return page_or_fragment(request, "releases/form.html", "releases/_artifact_fields.html", context)
    return render(request, "releases/form.html", context)


@login_required
def release_edit(request, pk: int):
    """The release's notes, while no deployment used it."""
    release = _visible(request, pk)
    context = _tab_context(request, release, "summary")
    if not context["can_change"]:
        reason = (
            "This release is used by deployment(s); releases are immutable once deployed."
            if context["may_register"]
            else f"You may not change releases of {release.application.slug}; that needs `register` on it."
        )
        messages.error(request, reason)
        return redirect("releases:detail", pk=release.pk)
    form = ReleaseNotesForm(request.POST or None, initial={"notes": release.notes})
    if request.method == "POST" and form.is_valid():
        try:
            services.release_update(actor=request.user, release=release, notes=form.cleaned_data["notes"])
        except (PermissionDenied, NotFound) as exc:
            messages.error(request, exc.detail)
            return redirect("releases:detail", pk=release.pk)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Notes of release {release.version} saved.")
            return redirect("releases:detail", pk=release.pk)
    context.update(form=form, title=f"Edit notes of {release.version}", submit="Save notes", aside=ASIDE)
    return render(request, "releases/form.html", context)


@login_required
@require_POST
def release_delete(request, pk: int) -> HttpResponse:
    release = _visible(request, pk)
    label = f"{release.version} of {release.application.name}"
    try:
        services.release_delete(actor=request.user, release=release)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return redirect("releases:detail", pk=release.pk)
    messages.success(request, f"Release {label} deleted.")
    return redirect("releases:list")
