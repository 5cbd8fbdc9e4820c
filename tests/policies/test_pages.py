"""An environment's Policies tab: the sets that apply with their rules, and a dry run of a release."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.services import team_add_member
from apps.policies.services import policy_set_create
from tests.factories import make_application, make_environment, make_release, make_team, make_user, register

pytestmark = pytest.mark.django_db


def test_the_policies_tab_lists_the_rules_and_tries_a_release():
    team = make_team()
    member = make_user()
    team_add_member(actor=None, team=team, user=member)
    production = make_environment(team, tier="production")
    application = make_application(team)
    release = make_release(application, [register(application, "3.1.0", by=member, branch="feature/x")])
    policy_set_create(
        actor=make_user(is_superuser=True),
        slug="prod",
        name="Production",
        tiers=["production"],
        rules=[
            {"kind": "allowed_branches", "params": {"patterns": ["main"]}, "overridable": False},
            {"kind": "no_freeze"},
        ],
    )
    client = Client()
    client.force_login(member)
    url = f"/environments/{production.slug}/policies/"
    html = client.get(url).content.decode()
    assert html.count('data-testid="policy-rule"') == 2
    assert "Allowed branches" in html
    assert "not overridable" in html
    tried = client.get(f"{url}?release={release.pk}").content.decode()
    results = tried.split('data-testid="dry-run-results"')[1].split("</ul>")[0]
    assert results.count('data-passed="false"') == 1
    assert results.count('data-passed="true"') == 1
    assert "3.1.0 (feature/x)" in results

    empty = make_environment(team, tier="development")
    assert 'data-testid="no-policies"' in client.get(f"/environments/{empty.slug}/policies/").content.decode()
    outsider = Client()
    outsider.force_login(make_user())
    assert outsider.get(url).status_code == 404


def test_a_policy_sets_page_tries_that_set_alone_against_any_environment():
    team = make_team()
    member = make_user()
    team_add_member(actor=None, team=team, user=member)
    staging = make_environment(team, tier="staging")
    application = make_application(team)
    release = make_release(application, [register(application, "3.1.0", by=member, branch="feature/x")])
    admin = make_user(is_superuser=True)
    policy_set_create(  # attached to staging, but not the set being tried: it must not answer
        actor=admin, slug="other", name="Other", environments=[staging], rules=[{"kind": "no_freeze"}]
    )
    policy_set_create(
        actor=admin,
        slug="prod",
        name="Production",
        tiers=["production"],
        rules=[{"kind": "allowed_branches", "params": {"patterns": ["main"]}}],
    )
    client = Client()
    client.force_login(member)
    page = client.get(f"/policies/prod/?release={release.pk}&environment={staging.slug}").content.decode()
    results = page.split('data-testid="dry-run-results"')[1].split("</ul>")[0]
    assert results.count('data-passed="false"') == 1
    assert "prod/allowed_branches" in results
    assert "other/" not in results
    unknown = client.get(f"/policies/prod/?release={release.pk}&environment=nowhere").content.decode()
    assert 'data-testid="dry-run-results"' not in unknown
    assert "Select a valid choice" in unknown
