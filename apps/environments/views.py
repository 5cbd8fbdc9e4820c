"""Environment pages: list by tier, detail (targets, variables, lifecycles), approvals (the policy), history,
access, and the forms.

Pages read through selectors and the API's FilterSet, and write only through services:
a domain error becomes a message or a form error. An environment the user may not view
is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.models import Team
from apps.approvals import services as approval_services
from apps.approvals.forms import ApprovalPolicyForm
from apps.approvals.selectors import pending_visible_to, policy_of
from apps.approvals.views import duration_words, mark_overdue
from apps.core.errors import PermissionDenied, ReleaseHubError
from apps.core.permissions import can, ensure_can, holders
from apps.core.ui import access_change, access_context, call_service, form_add_domain_error, page_or_fragment

from . import services
from .choices import Tier
from .filters import EnvironmentFilterSet
from .forms import EnvironmentForm, TargetForm, VariableEditForm, VariableForm
from .models import Environment
from .selectors import (
    environment_history,
    environments_visible_to,
    environments_with_counts,
    lifecycles_including,
    lifecycles_visible_to,
    targets_of,
    variables_of,
)

HISTORY_PAGE_SIZE = 50
ADD_PERMISSION = "environments.add_environment"

# The help card beside each form.
ASIDES = {
    "environment": {
        "title": "Good to know",
        "text": [
            "The owner team gets view, deploy, book and manage on a new environment. Approving deployments is "
            "granted separately, on the Access tab.",
            "Deployment templates hold no environment-specific values: they live in this environment's variables "
            "and targets, so one template deploys to every environment.",
        ],
    },
    "target": {
        "title": "In deployment templates",
        "text": [
            "Steps read a target as {{ target.name }}, {{ target.address }}, {{ target.path }} and "
            "{{ target.attributes.KEY }}.",
            "Blue/green strategies deploy to the idle slot, then switch traffic; rolling ones take targets in batches.",
        ],
    },
    "variable": {
        "title": "Values and secrets",
        "text": [
            "Steps read a variable as {{ var.NAME }}; a target's override wins over the environment-wide value.",
            "A secret is encrypted before it is stored. Pages, the API, logs and plans only ever show a mask; a "
            "worker decrypts it while it runs a step.",
        ],
    },
}


def visible_or_404(request: HttpRequest, slug: str) -> Environment:
    """The environment if the user may view it, else 404 (its existence stays hidden)."""
    return get_object_or_404(environments_visible_to(request.user), slug=slug)


def _may_manage(request: HttpRequest, environment: Environment) -> bool:
    return can(request.user, "manage", environment)


def _refuse_unless_manager(request: HttpRequest, environment: Environment) -> HttpResponse | None:
    """For the GET of a manage form: a redirect with the reason when the user may not manage it."""
    try:
        ensure_can(request.user, "manage", environment)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return redirect("environments:detail", slug=environment.slug)
    return None


# --- List and detail ---------------------------------------------------------------------------------


@login_required
def environment_list(request):
    """Visible environments grouped by tier, filtered by the API's EnvironmentFilterSet."""
    filterset = EnvironmentFilterSet(request.GET or None, queryset=environments_with_counts(request.user))
    environments = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    context = {
        "filterset": filterset,
        "environments": environments,
        "filtered": any(request.GET.get(name) for name in filterset.filters),
        "tiers": Tier.choices,
        "teams": Team.objects.order_by("name"),
        "lifecycles": lifecycles_visible_to(request.user),
        "can_create": request.user.has_perm(ADD_PERMISSION),
    }
    return page_or_fragment(request, "environments/list.html", "environments/_results.html", context)


def tab_context(request, environment: Environment, tab: str) -> dict:
    from apps.scheduling.services import lock_of  # the calendar builds on environments

    return {
        "environment": environment,
        "tab": tab,
        "can_manage": _may_manage(request, environment),
        "lock": lock_of(environment),
    }


@login_required
def environment_detail(request, slug: str):
    """Overview: properties, targets, variables (secrets masked), lifecycles it belongs to."""
    environment = visible_or_404(request, slug)
    context = tab_context(request, environment, "overview")
    context.update(
        targets=targets_of(environment),
        variables=variables_of(environment),
        lifecycles=lifecycles_including(environment, request.user),
        policy=policy_of(environment),
    )
    return render(request, "environments/detail.html", context)


# --- Approvals -------------------------------------------------------------------------------------

APPROVALS_SHOWN = 10


def _approvals_page(request, environment: Environment, form: ApprovalPolicyForm | None = None) -> HttpResponse:
    """The Approvals tab: the policy (or none), the teams holding `approve`, the deployments waiting here, and
    for managers the form that sets or replaces the policy (`form` when it comes back with errors)."""
    context = tab_context(request, environment, "approvals")
    policy = policy_of(environment)
    if form is None and context["can_manage"]:
        form = ApprovalPolicyForm(policy=policy)
    waiting = pending_visible_to(request.user).filter(environment=environment)
    context.update(
        policy=policy,
        expiry=duration_words(policy.expires_after) if policy and policy.expires_after else "",
        form=form,
        approvers=holders(environment, "approve").select_related("team").order_by("name"),
        waiting=mark_overdue(list(waiting[:APPROVALS_SHOWN])),
        waiting_count=waiting.count(),
    )
    return render(request, "environments/approvals.html", context)


def _to_approvals(environment: Environment) -> HttpResponse:
    return redirect("environments:approvals", slug=environment.slug)


@login_required
def environment_approvals(request, slug: str):
    """What deployments here need before they run: the approval policy; managers set, replace or remove it."""
    return _approvals_page(request, visible_or_404(request, slug))


@login_required
@require_POST
def environment_approvals_set(request, slug: str):
    """Set or replace the policy (apps.approvals.services.policy_set; `manage` on the environment)."""
    environment = visible_or_404(request, slug)
    try:
        ensure_can(request.user, "manage", environment)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return _to_approvals(environment)
    form = ApprovalPolicyForm(request.POST)
    if form.is_valid():
        replacing = policy_of(environment) is not None
        try:
            policy = approval_services.policy_set(actor=request.user, environment=environment, **form.service_kwargs())
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return _to_approvals(environment)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            count = policy.required_approvals
            messages.success(
                request,
                f"{'Policy replaced' if replacing else 'Policy set'}: deployments to {environment.name} requested "
                f"from now on need {count} approval{'s' if count != 1 else ''}.",
            )
            return _to_approvals(environment)
    return _approvals_page(request, environment, form)


@login_required
@require_POST
def environment_approvals_remove(request, slug: str):
    """Remove the policy: deployments requested from now on need no approval (waiting ones keep theirs)."""
    environment = visible_or_404(request, slug)
    call_service(
        request,
        approval_services.policy_remove,
        f"Deployments to {environment.name} need no approval any more; those already waiting still do.",
        actor=request.user,
        environment=environment,
    )
    return _to_approvals(environment)


@login_required
def environment_history_tab(request, slug: str):
    """Who changed what, when and through which channel: the environment, its targets and variables."""
    environment = visible_or_404(request, slug)
    page = Paginator(environment_history(environment), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = tab_context(request, environment, "history")
    context.update(page=page, audit_query=f"object_type=environments.environment&object_id={environment.pk}")
    return render(request, "environments/history.html", context)


@login_required
def environment_access(request, slug: str):
    """Which team may do what here; managers grant and revoke."""
    environment = visible_or_404(request, slug)
    context = tab_context(request, environment, "access")
    context.update(
        access_context(
            request,
            environment,
            grant_url=reverse("environments:access-grant", args=[environment.slug]),
            revoke_url=reverse("environments:access-revoke", args=[environment.slug]),
        )
    )
    return render(request, "environments/access.html", context)


def _change_access(request, slug: str, *, granted: bool):
    environment = visible_or_404(request, slug)
    access_change(request, environment, granted=granted)
    if not can(request.user, "view", environment):  # the user just revoked their own access
        return redirect("environments:list")
    return redirect("environments:access", slug=environment.slug)


@login_required
@require_POST
def environment_access_grant(request, slug: str):
    return _change_access(request, slug, granted=True)


@login_required
@require_POST
def environment_access_revoke(request, slug: str):
    return _change_access(request, slug, granted=False)


# --- Environment forms ---------------------------------------------------------------------------


def _render_form(request, template_context: dict) -> HttpResponse:
    return render(request, "environments/form.html", template_context)


@login_required
def environment_create(request):
    if not request.user.has_perm(ADD_PERMISSION):
        messages.error(request, "You may not create environments; ask an administrator.")
        return redirect("environments:list")
    form = EnvironmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            environment = services.environment_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("environments:list")
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Environment “{environment.name}” created.")
            return redirect("environments:detail", slug=environment.slug)
    return _render_form(
        request,
        {"form": form, "title": "New environment", "submit": "Create environment", "aside": ASIDES["environment"]},
    )


@login_required
def environment_edit(request, slug: str):
    environment = visible_or_404(request, slug)
    if request.method == "GET" and (refused := _refuse_unless_manager(request, environment)):
        return refused
    form = EnvironmentForm(request.POST or None, instance=environment)
    if request.method == "POST" and form.is_valid():
        try:
            services.environment_update(actor=request.user, environment=environment, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("environments:detail", slug=slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Environment “{form.cleaned_data['name']}” saved.")
            return redirect("environments:detail", slug=slug)
    return _render_form(
        request,
        {
            "form": form,
            "environment": environment,
            "title": f"Edit {environment.name}",
            "submit": "Save changes",
            "aside": ASIDES["environment"],
        },
    )


@login_required
@require_POST
def environment_delete(request, slug: str):
    environment = visible_or_404(request, slug)
    name = environment.name
    try:
        services.environment_delete(actor=request.user, environment=environment)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return redirect("environments:detail", slug=slug)
    messages.success(request, f"Environment “{name}” deleted.")
    return redirect("environments:list")


# --- Targets ---------------------------------------------------------------------------------------


@login_required
def target_form(request, slug: str, pk: int | None = None):
    """Add a target (pk None) or edit one."""
    environment = visible_or_404(request, slug)
    target = get_object_or_404(targets_of(environment), pk=pk) if pk is not None else None
    if request.method == "GET" and (refused := _refuse_unless_manager(request, environment)):
        return refused
    form = TargetForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        try:
            if target is None:
                target = services.target_create(actor=request.user, environment=environment, **form.cleaned_data)
                done = f"Target “{target.name}” added."
            else:
                target = services.target_update(actor=request.user, target=target, **form.cleaned_data)
                done = f"Target “{target.name}” saved."
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("environments:detail", slug=slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, done)
            return redirect(f"{reverse('environments:detail', args=[slug])}#targets")
    title = f"Edit target {target.name}" if target else f"Add a target to {environment.name}"
    return _render_form(
        request,
        {
            "form": form,
            "environment": environment,
            "title": title,
            "lead": "A host, service or directory that deployments to this environment act on.",
            "submit": "Save target" if target else "Add target",
            "aside": ASIDES["target"],
        },
    )


@login_required
@require_POST
def target_delete(request, slug: str, pk: int):
    environment = visible_or_404(request, slug)
    target = get_object_or_404(targets_of(environment), pk=pk)
    call_service(request, services.target_delete, f"Target “{target.name}” deleted.", actor=request.user, target=target)
    return redirect(f"{reverse('environments:detail', args=[slug])}#targets")


# --- Variables -------------------------------------------------------------------------------------


@login_required
def variable_create(request, slug: str):
    environment = visible_or_404(request, slug)
    if request.method == "GET" and (refused := _refuse_unless_manager(request, environment)):
        return refused
    form = VariableForm(request.POST or None, environment=environment)
    if request.method == "POST" and form.is_valid():
        try:
            variable = services.variable_create(actor=request.user, environment=environment, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("environments:detail", slug=slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Variable {variable} added.")
            return redirect(f"{reverse('environments:detail', args=[slug])}#variables")
    return _render_form(
        request,
        {
            "form": form,
            "environment": environment,
            "title": f"Add a variable to {environment.name}",
            "lead": "Deployment templates read it as {{ var.NAME }}; a target override wins over the "
            "environment-wide value.",
            "submit": "Add variable",
            "aside": ASIDES["variable"],
        },
    )


@login_required
def variable_edit(request, slug: str, pk: int):
    environment = visible_or_404(request, slug)
    variable = get_object_or_404(variables_of(environment), pk=pk)
    if request.method == "GET" and (refused := _refuse_unless_manager(request, environment)):
        return refused
    form = VariableEditForm(request.POST or None, variable=variable)
    if request.method == "POST" and form.is_valid():
        try:
            services.variable_update(actor=request.user, variable=variable, **form.changes())
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("environments:detail", slug=slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Variable {variable} saved.")
            return redirect(f"{reverse('environments:detail', args=[slug])}#variables")
    return _render_form(
        request,
        {
            "form": form,
            "environment": environment,
            "variable": variable,
            "title": f"Edit variable {variable}",
            "lead": "Its name and scope stay; delete it and add another to change them.",
            "submit": "Save variable",
            "aside": ASIDES["variable"],
        },
    )


@login_required
@require_POST
def variable_delete(request, slug: str, pk: int):
    environment = visible_or_404(request, slug)
    variable = get_object_or_404(variables_of(environment), pk=pk)
    call_service(
        request, services.variable_delete, f"Variable {variable} deleted.", actor=request.user, variable=variable
    )
    return redirect(f"{reverse('environments:detail', args=[slug])}#variables")
