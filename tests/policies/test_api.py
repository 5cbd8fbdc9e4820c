"""Policy sets through the API: create (validated per rule, permissions), list what applies where one may see,
and a dry run of a release against an environment's policies."""

from __future__ import annotations

import pytest

from apps.accounts.services import team_add_member
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_release,
    make_team,
    make_user,
    register,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene():
    team = make_team()
    admin = make_user(is_superuser=True)
    member = make_user()
    team_add_member(actor=None, team=team, user=member)
    production = make_environment(team, tier="production")
    application = make_application(team)
    artifact = register(application, "2.0.0", by=admin, branch="feature/login")
    return {
        "admin": bearer_client(admin, scopes=("read", "config:write")),
        "member": bearer_client(member, scopes=("read", "config:write")),
        "production": production,
        "release": make_release(application, [artifact]),
    }


RULES = [
    {"kind": "allowed_strategies", "params": {"strategies": ["canary", "blue_green"]}},
    {"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False},
]


def test_create_list_and_dry_run(scene):
    production = scene["production"]
    body = {"slug": "prod-rules", "name": "Production rules", "environments": [production.slug], "rules": RULES}
    created = scene["admin"].post("/api/v1/policy-sets/", body, format="json")
    assert created.status_code == 201, created.content
    assert [(r["position"], r["kind"], r["overridable"]) for r in created.json()["rules"]] == [
        (0, "allowed_strategies", True),
        (1, "allowed_branches", False),
    ]
    assert [s["slug"] for s in scene["member"].get("/api/v1/policy-sets/").json()["results"]] == ["prod-rules"]
    assert make_user_client().get("/api/v1/policy-sets/").json()["results"] == []  # attached where they cannot see

    run = scene["member"].post(
        "/api/v1/policies/evaluate/",
        {"release": scene["release"].pk, "environment": production.slug, "strategy": "canary"},
        format="json",
    )
    assert run.status_code == 200, run.content
    result = run.json()
    assert result["passed"] is False
    assert [(r["kind"], r["passed"]) for r in result["results"]] == [
        ("allowed_strategies", True),
        ("allowed_branches", False),
    ]
    assert "2.0.0 (feature/login)" in result["results"][1]["message"]


def test_create_refuses_bad_rules_and_people_without_the_permission(scene):
    body = {
        "slug": "bad",
        "name": "Bad",
        "all_environments": True,
        "rules": [{"kind": "expression", "params": {"expression": "1 +"}}, {"kind": "max_concurrent", "params": {}}],
    }
    refused = scene["admin"].post("/api/v1/policy-sets/", body, format="json")
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"rules[0].params.expression", "rules[1].params"}
    body["rules"] = RULES
    assert scene["member"].post("/api/v1/policy-sets/", body, format="json").status_code == 403
    nowhere = {**body, "all_environments": False}
    assert scene["admin"].post("/api/v1/policy-sets/", nowhere, format="json").json()["fields"] == {
        "environments": ["Attach it to environments, tiers or all environments."]
    }


def test_a_dry_run_needs_what_one_may_see(scene):
    stranger = make_user_client()
    run = stranger.post(
        "/api/v1/policies/evaluate/",
        {"release": scene["release"].pk, "environment": scene["production"].slug},
        format="json",
    )
    assert run.status_code == 400
    assert set(run.json()["fields"]) == {"release", "environment"}
    unknown = stranger.post(
        "/api/v1/policies/evaluate/", {"release": 999999, "environment": "nowhere"}, format="json"
    ).json()
    hidden = run.json()  # the same words as for what does not exist: nothing tells one from the other
    assert [m.replace(str(scene["release"].pk), "N") for m in hidden["fields"]["release"]] == [
        m.replace("999999", "N") for m in unknown["fields"]["release"]
    ]
    assert [m.replace(scene["production"].slug, "S") for m in hidden["fields"]["environment"]] == [
        m.replace("nowhere", "S") for m in unknown["fields"]["environment"]
    ]


def make_user_client():
    return bearer_client(make_user(), scopes=("read",))
