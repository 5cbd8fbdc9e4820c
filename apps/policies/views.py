"""Policy pages: the policy sets (list, detail, history), their editor (create, edit, delete), and an environment's
Policies tab: the sets that apply to it, their rules, and a dry run of a release.

Pages read through selectors and write only through services: a domain error becomes a message or a form error,
a rule's next to its row. A policy set the user may not view is a 404.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.core.errors import NotFound, PermissionDenied, ReleaseHubError, ValidationFailed
from apps.core.forms import BootstrapForm
from apps.core.ui import form_add_domain_error
from apps.deployments.models import Strategy
from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to
from apps.environments.views import tab_context, visible_or_404
from apps.releases.selectors import releases_visible_to

from . import services
from .forms import PolicySetForm, as_initial, rule_formset, with_one_more_rule
from .models import PolicySet
from .rules import KINDS, params_text, title_of, value_text
from .selectors import environments_to_attach, policy_set_history, policy_sets_visible_to
from .services import RULE_FIELDS, evaluate, policy_sets_for

RELEASES_OFFERED = 50
PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 50
RULE_ERROR = re.compile(r"rules\[(\d+)\](?:\.(.+))?")


def _describe_rules(policy_set: PolicySet) -> None:
    """Give each (prefetched) rule its kind's title and its parameters as text, for the templates."""
    for rule in policy_set.rules.all():
        rule.title = title_of(rule.kind)
        rule.shown = params_text(rule.params)
        rule.params_shown = [(key, value_text(value)) for key, value in rule.params.items()]


# --- The environment's Policies tab ------------------------------------------------------------------


class DryRunForm(BootstrapForm):
    """A release (one of the newest the user may view) tried against policy sets; `environments` adds the choice of
    environment (a policy set's page: any environment, attached or not)."""

    release = forms.ModelChoiceField(queryset=None, empty_label="Choose a release…")
    environment = forms.ModelChoiceField(queryset=None, to_field_name="slug", empty_label="Choose an environment…")
    strategy = forms.ChoiceField(choices=[("", "The environment's default"), *Strategy.choices], required=False)
    change_ticket = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, user, environments=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        releases = releases_visible_to(user)
        self.fields["release"].queryset = releases
        self.fields["release"].choices = [("", "Choose a release…")] + [
            (release.pk, f"{release.application.name} {release.version}") for release in releases[:RELEASES_OFFERED]
        ]
        if environments is None:
            del self.fields["environment"]
        else:
            self.fields["environment"].queryset = environments

    def results(self, user, environment, policy_sets) -> list | None:
        """What `policy_sets` would say of deploying the chosen release to `environment` now (None: no valid
        choice yet)."""
        if not (self.is_bound and self.is_valid()):
            return None
        data = self.cleaned_data
        environment = environment or data["environment"]
        return evaluate(
            release=data["release"],
            environment=environment,
            strategy=data["strategy"] or environment.default_strategy or Strategy.ALL_AT_ONCE,
            requester=user,
            change_ticket=data["change_ticket"].strip(),
            policy_sets=policy_sets,
        )


@login_required
def environment_policies(request, slug: str):
    """The policy sets that apply to the environment and, for `?release=`, what they would say now."""
    environment = visible_or_404(request, slug)
    context = tab_context(request, environment, "policies")
    form = DryRunForm(request.GET or None, user=request.user)
    policy_sets = policy_sets_for(environment)
    for policy_set in policy_sets:
        _describe_rules(policy_set)
    context.update(
        policy_sets=policy_sets,
        form=form,
        results=form.results(request.user, environment, policy_sets),
        can_add=request.user.has_perm(services.ADD_PERMISSION),
    )
    return render(request, "policies/environment.html", context)


# --- Policy sets ---------------------------------------------------------------------------------------


def _visible(request: HttpRequest, slug: str) -> PolicySet:
    """The policy set if the user may view it, else 404 (its existence stays hidden)."""
    return get_object_or_404(policy_sets_visible_to(request.user), slug=slug)


def _refusal(request: HttpRequest, action: str, policy_set: PolicySet | None = None) -> str:
    """Why the user may not `action` ("add", "change", "delete") the set; "" when they may (the service's rule,
    which decides again when the form is posted). All the environments it is attached to count, also those the
    user may not view (the prefetched ones are only the others)."""
    attached = Environment.objects.filter(policy_sets=policy_set) if policy_set else []
    try:
        services.ensure_may(request.user, action, attached)
    except NotFound:
        return f"You may not {action} this set: it is attached to environments you may not view."
    except ReleaseHubError as exc:
        return exc.detail
    return ""


@login_required
def policy_set_list(request):
    """The policy sets the user may see, by name: where each applies, its rules, whether it is active."""
    page = Paginator(policy_sets_visible_to(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "can_add": request.user.has_perm(services.ADD_PERMISSION)}
    return render(request, "policies/list.html", context)


def _header_context(request: HttpRequest, policy_set: PolicySet, tab: str) -> dict:
    return {
        "policy_set": policy_set,
        "tab": tab,
        "can_change": not _refusal(request, "change", policy_set),
        "can_delete": not _refusal(request, "delete", policy_set),
    }


@login_required
def policy_set_detail(request, slug: str):
    """Where the set applies (with links to each environment's Policies tab), its rules, and a dry run of this set
    alone against a release and any environment."""
    policy_set = _visible(request, slug)
    _describe_rules(policy_set)
    context = _header_context(request, policy_set, "rules")
    form = DryRunForm(request.GET or None, user=request.user, environments=environments_visible_to(request.user))
    context.update(form=form, results=form.results(request.user, None, [policy_set]))
    return render(request, "policies/detail.html", context)


@login_required
def policy_set_history_tab(request, slug: str):
    """Who changed the set or its rules, when, through which channel, and what."""
    policy_set = _visible(request, slug)
    page = Paginator(policy_set_history(policy_set, request.user), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _header_context(request, policy_set, "history")
    context.update(page=page, audit_query=f"object_type=policies.policyset&object_id={policy_set.pk}")
    return render(request, "policies/history.html", context)


def _kinds_help() -> list[dict[str, Any]]:
    """Every rule kind with its parameters, read from its JSON Schema, for the editor's help."""
    kinds = []
    for name, kind in KINDS.items():
        required = set(kind.schema.get("required", []))
        params = [
            {
                "name": param,
                "type": _type_of(spec),
                "required": param in required,
                "description": spec.get("description") or spec.get("x-message", ""),
            }
            for param, spec in kind.schema["properties"].items()
        ]
        kinds.append({"name": name, "title": kind.title, "params": params})
    return kinds


def _type_of(spec: dict) -> str:
    """A JSON Schema type in words: "integer, 1 to 20", "list of: mon, tue", "text"."""
    if "enum" in spec:
        return "one of: " + ", ".join(map(str, spec["enum"]))
    if "anyOf" in spec:
        return " or ".join(_type_of(option) for option in spec["anyOf"])
    kind = spec.get("type", "any")
    if kind == "array":
        items = spec.get("items", {})
        return f"list of: {', '.join(map(str, items['enum']))}" if "enum" in items else f"list of {_type_of(items)}"
    if kind == "integer" and "minimum" in spec and "maximum" in spec:
        return f"integer, {spec['minimum']} to {spec['maximum']}"
    return {"string": "text", "boolean": "true or false", "object": "object"}.get(kind, kind)


def _show_error(form: PolicySetForm, formset, exc: ReleaseHubError) -> None:
    """A domain error on the editor: `rules[2].params.max` next to the third rule's parameters, `rules` above the
    rules, the others on the form's fields."""
    rows = formset.rules()
    rest: dict[str, list[str]] = {}
    for key, errors in (exc.fields or {}).items():
        match = RULE_ERROR.fullmatch(key)
        if match and int(match[1]) < len(rows):
            form_add_domain_error(rows[int(match[1])], ValidationFailed(fields={match[2] or "": errors}))
        elif key == "rules":
            formset.non_form_errors().extend(errors)
        else:
            rest[key] = errors
    if any(row.errors for row in rows):
        form.add_error(None, "Some rules need fixing: see the messages next to them.")
    if rest or exc.detail != exc.default_detail:
        exc.fields = rest or None
        form_add_domain_error(form, exc)


def _editor(request, policy_set: PolicySet | None, save) -> HttpResponse:
    """The editor's GET and POST: `save(values, rules)` calls the service and returns the saved set; "Add rule"
    draws the editor again with one more row."""
    environments = environments_to_attach(request.user, policy_set)
    back = redirect("policies:detail", slug=policy_set.slug) if policy_set else redirect("policies:list")
    if request.method != "POST":
        initial = [
            {name: getattr(r, name) for name in RULE_FIELDS} for r in (policy_set.rules.all() if policy_set else [])
        ]
        form = PolicySetForm(instance=policy_set, environments=environments)
        formset = rule_formset(initial=initial)
    else:
        form = PolicySetForm(request.POST, instance=policy_set, environments=environments)
        formset = rule_formset(request.POST)
        if "add-rule" in request.POST:
            form = PolicySetForm(initial=as_initial(form), instance=policy_set, environments=environments)
            formset = with_one_more_rule(formset)
        elif form.is_valid() and formset.is_valid():
            try:
                saved = save(form.values(), [row.values() for row in formset.rules()])
            except PermissionDenied as exc:
                messages.error(request, exc.detail)
                return back
            except ReleaseHubError as exc:
                _show_error(form, formset, exc)
            else:
                return redirect("policies:detail", slug=saved.slug)
    context = {
        "form": form,
        "formset": formset,
        "policy_set": policy_set,
        "kinds": _kinds_help(),
        "title": f"Edit {policy_set.name}" if policy_set else "New policy set",
        "submit": "Save changes" if policy_set else "Create policy set",
    }
    return render(request, "policies/form.html", context)


@login_required
def policy_set_create(request):
    """The editor for a new set (add_policyset; the environments offered are those the user manages)."""
    if refusal := _refusal(request, "add"):
        messages.error(request, refusal)
        return redirect("policies:list")

    def save(values: dict, rules: list[dict]) -> PolicySet:
        policy_set = services.policy_set_create(actor=request.user, rules=rules, **values)
        messages.success(request, f"Policy set “{policy_set.name}” created.")
        return policy_set

    return _editor(request, None, save)


@login_required
def policy_set_edit(request, slug: str):
    """The editor for an existing set, its rules in order; saving replaces them (services.policy_set_update)."""
    policy_set = _visible(request, slug)
    if refusal := _refusal(request, "change", policy_set):
        messages.error(request, refusal)
        return redirect("policies:detail", slug=slug)

    def save(values: dict, rules: list[dict]) -> PolicySet:
        saved = services.policy_set_update(actor=request.user, policy_set=policy_set, rules=rules, **values)
        messages.success(request, f"Policy set “{saved.name}” saved.")
        return saved

    return _editor(request, policy_set, save)


@login_required
def policy_set_delete(request, slug: str):
    """GET: what deleting the set means, and a button to confirm; POST: delete it."""
    policy_set = _visible(request, slug)
    if request.method == "POST":
        try:
            services.policy_set_delete(actor=request.user, policy_set=policy_set)
        except ReleaseHubError as exc:
            messages.error(request, exc.detail)
            return redirect("policies:detail", slug=slug)
        messages.success(request, f"Policy set “{policy_set.name}” deleted.")
        return redirect("policies:list")
    if refusal := _refusal(request, "delete", policy_set):
        messages.error(request, refusal)
        return redirect("policies:detail", slug=slug)
    _describe_rules(policy_set)
    return render(request, "policies/delete.html", {"policy_set": policy_set})
