"""Application pages: list with search, detail with its artifacts (by branch, paginated), artifact
provenance, history, access, and the forms.

Pages read through selectors and the API's FilterSets, and write only through services:
a domain error becomes a message or a form error. An application the user may not view
is a 404, and so are its artifacts.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.models import Team
from apps.core.errors import PermissionDenied, ReleaseHubError
from apps.core.permissions import can, ensure_can
from apps.core.ui import access_change, access_context, form_add_domain_error, page_or_fragment, query_without_page

from . import services
from .filters import ApplicationFilterSet, ArtifactFilterSet
from .forms import ApplicationForm
from .models import Application
from .selectors import (
    application_history,
    applications_overview,
    applications_visible_to,
    artifacts_visible_to,
    branches_of,
)

PAGE_SIZE = 50
ADD_PERMISSION = "catalog.add_application"
ASIDE = {
    "title": "Good to know",
    "text": [
        "The owner team may view the application, register its builds and manage it; grant other teams access on "
        "the Access tab.",
        "CI registers each build with POST /api/v1/artifacts/, naming the application by its slug. Artifacts never "
        "change once registered.",
    ],
}


def _visible(request: HttpRequest, slug: str) -> Application:
    """The application if the user may view it, else 404 (its existence stays hidden)."""
    return get_object_or_404(applications_visible_to(request.user), slug=slug)


def _tab_context(request, application: Application, tab: str) -> dict:
    return {"application": application, "tab": tab, "can_manage": can(request.user, "manage", application)}


@login_required
def application_list(request):
    """Visible applications with their artifact counts and latest version; searched with the API's FilterSet."""
    filterset = ApplicationFilterSet(request.GET or None, queryset=applications_overview(request.user))
    applications = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    context = {
        "filterset": filterset,
        "page": Paginator(applications, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query_without_page(request),
        "filtered": any(request.GET.get(name) for name in filterset.filters),
        "teams": Team.objects.order_by("name"),
        "can_create": request.user.has_perm(ADD_PERMISSION),
    }
    return page_or_fragment(request, "catalog/application_list.html", "catalog/_application_results.html", context)


@login_required
def application_detail(request, slug: str):
    """The application and its artifacts, newest version first, filtered by branch, 50 a page."""
    application = _visible(request, slug)
    artifacts = artifacts_visible_to(request.user).filter(application=application)
    filterset = ArtifactFilterSet(request.GET or None, queryset=artifacts)
    artifacts = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    context = _tab_context(request, application, "artifacts")
    context.update(
        filterset=filterset,
        page=Paginator(artifacts, PAGE_SIZE).get_page(request.GET.get("page")),
        query=query_without_page(request),
        branches=branches_of(application),
        branch=request.GET.get("branch", ""),
    )
    if not getattr(request, "htmx", False):  # the artifact filter swaps the list only
        from apps.inventory.selectors import where_deployed  # the inventory builds on the catalog

        context["where_deployed"] = where_deployed(request.user, application)
    return page_or_fragment(request, "catalog/application_detail.html", "catalog/_artifact_results.html", context)


@login_required
def artifact_detail(request, slug: str, version: str):
    """One build's provenance: where it comes from, who registered it, with which token."""
    artifact = get_object_or_404(artifacts_visible_to(request.user), application__slug=slug, version=version)
    audit_query = urlencode({"object_type": "catalog.artifact", "object_id": artifact.pk})
    context = {
        "artifact": artifact,
        "application": artifact.application,
        "audit_url": f"{reverse('audit:log')}?{audit_query}",
        "uri_is_link": artifact.uri.startswith(("https://", "http://")),
        "branch_url": (
            f"{reverse('catalog:application-detail', args=[slug])}?{urlencode({'branch': artifact.branch})}"
            if artifact.branch
            else ""
        ),
    }
    return render(request, "catalog/artifact_detail.html", context)


@login_required
def application_history_tab(request, slug: str):
    application = _visible(request, slug)
    context = _tab_context(request, application, "history")
    context.update(
        page=Paginator(application_history(application), PAGE_SIZE).get_page(request.GET.get("page")),
        audit_query=urlencode({"object_type": "catalog.application", "object_id": application.pk}),
    )
    return render(request, "catalog/application_history.html", context)


@login_required
def application_access(request, slug: str):
    """Which team may do what with this application; managers grant and revoke."""
    application = _visible(request, slug)
    context = _tab_context(request, application, "access")
    context.update(
        access_context(
            request,
            application,
            grant_url=reverse("catalog:application-access-grant", args=[application.slug]),
            revoke_url=reverse("catalog:application-access-revoke", args=[application.slug]),
        )
    )
    return render(request, "catalog/application_access.html", context)


def _change_access(request, slug: str, *, granted: bool):
    application = _visible(request, slug)
    access_change(request, application, granted=granted)
    if not can(request.user, "view", application):  # the user just revoked their own access
        return redirect("catalog:application-list")
    return redirect("catalog:application-access", slug=application.slug)


@login_required
@require_POST
def application_access_grant(request, slug: str):
    return _change_access(request, slug, granted=True)


@login_required
@require_POST
def application_access_revoke(request, slug: str):
    return _change_access(request, slug, granted=False)


@login_required
def application_create(request):
    if not request.user.has_perm(ADD_PERMISSION):
        messages.error(request, "You may not create applications; ask an administrator.")
        return redirect("catalog:application-list")
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            application = services.application_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("catalog:application-list")
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Application “{application.name}” created.")
            return redirect("catalog:application-detail", slug=application.slug)
    return render(
        request,
        "catalog/application_form.html",
        {"form": form, "title": "New application", "submit": "Create application", "aside": ASIDE},
    )


@login_required
def application_edit(request, slug: str):
    application = _visible(request, slug)
    if request.method == "GET":
        try:
            ensure_can(request.user, "manage", application)
        except ReleaseHubError as exc:
            messages.error(request, exc.detail)
            return redirect("catalog:application-detail", slug=slug)
    form = ApplicationForm(request.POST or None, instance=application)
    if request.method == "POST" and form.is_valid():
        try:
            services.application_update(actor=request.user, application=application, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("catalog:application-detail", slug=slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Application “{form.cleaned_data['name']}” saved.")
            return redirect("catalog:application-detail", slug=slug)
    return render(
        request,
        "catalog/application_form.html",
        {
            "form": form,
            "application": application,
            "title": f"Edit {application.name}",
            "submit": "Save changes",
            "aside": ASIDE,
        },
    )


@login_required
@require_POST
def application_delete(request, slug: str) -> HttpResponse:
    application = _visible(request, slug)
    name = application.name
    try:
        services.application_delete(actor=request.user, application=application)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return redirect("catalog:application-detail", slug=slug)
    messages.success(request, f"Application “{name}” deleted.")
    return redirect("catalog:application-list")
