"""The environment's Policies tab: the policy sets that apply to it, their rules, and a dry run of a release."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.core.forms import BootstrapForm
from apps.deployments.models import Strategy
from apps.environments.views import tab_context, visible_or_404
from apps.releases.selectors import releases_visible_to

from .rules import KINDS
from .services import evaluate, policy_sets_for

RELEASES_OFFERED = 50


def _shown(value) -> str:
    """A rule parameter as people read it: lists joined, objects as key=value."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class DryRunForm(BootstrapForm):
    release = forms.ModelChoiceField(queryset=None, empty_label="Choose a release…")
    strategy = forms.ChoiceField(choices=[("", "The environment's default"), *Strategy.choices], required=False)
    change_ticket = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, releases, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["release"].queryset = releases


@login_required
def environment_policies(request, slug: str):
    """The policy sets that apply to the environment and, for `?release=`, what they would say now."""
    environment = visible_or_404(request, slug)
    context = tab_context(request, environment, "policies")
    releases = releases_visible_to(request.user)
    form = DryRunForm(request.GET or None, releases=releases)
    form.fields["release"].choices = [("", "Choose a release…")] + [
        (release.pk, f"{release.application.name} {release.version}") for release in releases[:RELEASES_OFFERED]
    ]
    policy_sets = policy_sets_for(environment)
    for policy_set in policy_sets:
        for rule in policy_set.rules.all():  # prefetched: the titles stay on these objects
            rule.title = KINDS[rule.kind].title
            rule.shown = "; ".join(f"{key}: {_shown(value)}" for key, value in rule.params.items())
    results = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        results = evaluate(
            release=data["release"],
            environment=environment,
            strategy=data["strategy"] or environment.default_strategy or Strategy.ALL_AT_ONCE,
            requester=request.user,
            change_ticket=data["change_ticket"].strip(),
            policy_sets=policy_sets,
        )
    context.update(policy_sets=policy_sets, form=form, results=results)
    return render(request, "policies/environment.html", context)
