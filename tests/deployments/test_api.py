"""The deployments API: requesting a deployment of a release, lists, details, controls, logs, templates."""

from __future__ import annotations

import pytest

from apps.accounts.services import team_add_member
from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_grant, variable_create
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
    unique,
)

SHELL = [
    {"name": "Announce", "kind": "shell", "params": {"command": "echo {{ release.version }} on {{ target.name }}"}}
]


@pytest.fixture
def setup(db):
    """An environment with two targets that `dora` may deploy to; an application with a release."""
    team = make_team()
    dora = make_user("dora")
    team_add_member(actor=None, team=team, user=dora)
    environment = make_environment(team, "qa")
    environment_grant(actor=None, environment=environment, team=team, action="deploy")
    for name in ("web-1", "web-2"):
        make_target(environment, name)
    application = make_application(team, "shop")
    release = make_release(application, [register(application, "1.0.0", by=dora)])
    template = template_create(actor=None, slug="announce", name="Announce", steps=SHELL)
    client = bearer_client(dora, scopes=("read", "deployments:write"))
    return {
        "team": team,
        "dora": dora,
        "env": environment,
        "app": application,
        "release": release,
        "template": template,
        "client": client,
    }


def test_deploy_a_release_is_201_with_the_plan(setup):
    response = setup["client"].post(
        f"/api/v1/releases/{setup['release'].pk}/deploy/",
        {"environment": "qa", "template": "announce", "strategy": "rolling", "strategy_options": {"batch_size": 1}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "running"
    assert body["environment"] == "qa"
    assert body["template"] == {"slug": "announce", "version": 1}
    assert len(body["plan_digest"]) == 64
    assert [p["targets"] for p in body["plan"]["phases"]] == [["web-1"], ["web-2"]]
    assert body["plan"]["targets"]["web-2"]["params"][0] == {"command": "echo 1.0.0 on web-2"}
    event = AuditEvent.objects.get(verb="deployment.requested")
    assert event.details["plan_digest"] == body["plan_digest"]


def test_an_undefined_template_variable_is_400_naming_it(setup):
    template_create(
        actor=None,
        slug="needs-var",
        name="Needs a variable",
        steps=[{"name": "Use it", "kind": "shell", "params": {"command": "echo {{ var.DB_HOST }}"}}],
    )
    response = setup["client"].post(
        f"/api/v1/releases/{setup['release'].pk}/deploy/", {"environment": "qa", "template": "needs-var"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert "var.DB_HOST is not defined" in body["detail"]
    assert "var.DB_HOST" in body["fields"]["template"][0]
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"environment": "nope"}, "environment"),
        ({"environment": "qa", "strategy": "sideways"}, "strategy"),
        (
            {"environment": "qa", "strategy": "rolling", "strategy_options": {"batch_size": 0}},
            "strategy_options.batch_size",
        ),
        ({"environment": "qa", "strategy_options": {"surprise": 1}}, "strategy_options.surprise"),
        ({"environment": "qa", "template": "missing"}, "template"),
    ],
)
def test_bad_deploy_requests_are_400_with_the_field(setup, body, field):
    body.setdefault("template", "announce")
    response = setup["client"].post(f"/api/v1/releases/{setup['release'].pk}/deploy/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


def test_deploy_needs_the_deploy_permission_and_the_scope(setup):
    url = f"/api/v1/releases/{setup['release'].pk}/deploy/"
    payload = {"environment": "qa", "template": "announce"}
    assert bearer_client(setup["dora"], scopes=("read",)).post(url, payload, format="json").status_code == 403
    # vic sees the environment and the application, but may not deploy
    onlooker = make_team()
    environment_grant(actor=None, environment=setup["env"], team=onlooker, action="view")
    application_grant(actor=None, application=setup["app"], team=onlooker, action="view")
    vic = make_user("vic")
    team_add_member(actor=None, team=onlooker, user=vic)
    response = bearer_client(vic, scopes=("read", "deployments:write")).post(url, payload, format="json")
    assert response.status_code == 403, response.json()
    # walt sees the environment but not the application: the release does not exist for him
    outsider = make_team()
    environment_grant(actor=None, environment=setup["env"], team=outsider, action="view")
    walt = make_user("walt")
    team_add_member(actor=None, team=outsider, user=walt)
    assert (
        bearer_client(walt, scopes=("read", "deployments:write")).post(url, payload, format="json").status_code == 404
    )
    # an environment dora cannot see is as unknown as one that does not exist
    make_environment(make_team(), "hidden")
    for slug in ("hidden", "nowhere"):
        response = setup["client"].post(url, {**payload, "environment": slug}, format="json")
        assert response.status_code == 400
        assert response.json()["fields"]["environment"] == [f"Unknown environment {slug!r}."]
    assert not Deployment.objects.exists()


def test_templates_that_would_exhaust_a_worker_or_break_rendering_are_400(setup):
    url = f"/api/v1/releases/{setup['release'].pk}/deploy/"
    for index, command in enumerate(["{{ 'a' * 10000000 }}", "{{ 2 ** 100000000 }}", "{{ 1 / 0 }}"]):
        slug = f"evil-{index}"
        template_create(
            actor=None, slug=slug, name=slug, steps=[{"name": "x", "kind": "shell", "params": {"command": command}}]
        )
        response = setup["client"].post(url, {"environment": "qa", "template": slug}, format="json")
        assert response.status_code == 400, command
        assert "template" in response.json()["fields"]
    admin = bearer_client(make_user("root", is_superuser=True, is_staff=True), scopes=("read", "config:write"))
    odd = admin.post(
        "/api/v1/deployment-templates/",
        {"slug": "odd", "name": "Odd", "steps": [{"name": "x", "kind": ["shell"], "params": {}}]},
        format="json",
    )
    assert odd.status_code == 400
    assert "steps[1].kind" in odd.json()["fields"]


def test_plan_digest_is_stable_and_follows_every_input(setup):
    def digest(**options):
        options.setdefault("template", setup["template"])
        return deployment_create(actor=None, release=setup["release"], environment=setup["env"], **options).plan_digest

    first = digest()
    assert digest() == first
    assert digest(strategy="rolling") != first
    variable_create(actor=None, environment=setup["env"], name="UNUSED", value="x")
    assert digest() != first  # variables are part of the plan (they reach shell steps as environment)


def test_list_filters_and_constant_queries(setup, django_assert_max_num_queries):
    client = setup["client"]
    deployment_create(actor=None, release=setup["release"], environment=setup["env"], template=setup["template"])
    few = client.get("/api/v1/deployments/?environment=qa")
    assert few.status_code == 200
    assert few.json()["count"] == 1
    for _ in range(5):
        env = make_environment(setup["team"], unique("env"))
        make_target(env, "web-1")
        deployment_create(actor=None, release=setup["release"], environment=env, template=setup["template"])
    with django_assert_max_num_queries(12):
        many = client.get("/api/v1/deployments/")
    assert many.json()["count"] == 6
    assert client.get("/api/v1/deployments/?status=running&environment=qa").json()["count"] == 1
    assert client.get(f"/api/v1/deployments/?release={setup['release'].pk}").json()["count"] == 6
    assert client.get("/api/v1/deployments/?status=bogus").status_code == 400


def test_detail_queries_do_not_grow_with_targets(setup, django_assert_max_num_queries):
    client = setup["client"]
    for index in range(3, 30):
        make_target(setup["env"], f"web-{index}")
    deployment = deployment_create(
        actor=None, release=setup["release"], environment=setup["env"], template=setup["template"]
    )
    from apps.deployments.engine import runner

    runner.advance(deployment.pk)  # runs the shell step on every target
    with django_assert_max_num_queries(12):
        body = client.get(f"/api/v1/deployments/{deployment.pk}/").json()
    assert len(body["steps"]) == 29
    with django_assert_max_num_queries(12):
        logs = client.get(f"/api/v1/deployments/{deployment.pk}/logs/").json()
    assert logs[0]["log"].splitlines()[:2] == ["$ echo 1.0.0 on web-1", "1.0.0 on web-1"]


def test_controls(setup):
    client = setup["client"]
    first = deployment_create(
        actor=None, release=setup["release"], environment=setup["env"], template=setup["template"]
    )
    second = deployment_create(
        actor=None, release=setup["release"], environment=setup["env"], template=setup["template"]
    )
    assert second.status == "queued"
    response = client.post(f"/api/v1/deployments/{second.pk}/cancel/")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    assert client.post(f"/api/v1/deployments/{second.pk}/cancel/").status_code == 409
    assert client.post(f"/api/v1/deployments/{first.pk}/resume/").status_code == 409
    assert client.post(f"/api/v1/deployments/{first.pk}/retry/").status_code == 409
    assert client.post(f"/api/v1/deployments/{first.pk}/rollback/").status_code == 409  # nothing earlier
    assert client.post("/api/v1/deployments/999999/cancel/").status_code == 404
    reader = bearer_client(setup["dora"], scopes=("read",))
    assert reader.post(f"/api/v1/deployments/{first.pk}/cancel/").status_code == 403
    # Running, its next unit's message on its way to a worker but no worker on it: cancelled at once.
    response = client.post(f"/api/v1/deployments/{first.pk}/cancel/")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


def test_templates_api_validates_steps_and_versions_them(setup):
    admin = make_user("root", is_superuser=True, is_staff=True)
    client = bearer_client(admin, scopes=("read", "config:write"))
    bad = client.post(
        "/api/v1/deployment-templates/",
        {"slug": "broken", "name": "Broken", "steps": [{"name": "x", "kind": "shell", "params": {"timeout": "soon"}}]},
        format="json",
    )
    assert bad.status_code == 400
    problems = bad.json()["fields"]["steps[1].params"]
    assert any("command" in p for p in problems)
    assert any("timeout" in p for p in problems)
    unknown = client.post(
        "/api/v1/deployment-templates/",
        {"slug": "odd", "name": "Odd", "steps": [{"name": "x", "kind": "teleport", "params": {}}]},
        format="json",
    )
    assert "Unknown step kind 'teleport'" in unknown.json()["fields"]["steps[1].kind"][0]
    created = client.post(
        "/api/v1/deployment-templates/", {"slug": "deploy", "name": "Deploy", "steps": SHELL}, format="json"
    )
    assert (created.status_code, created.json()["version"]) == (201, 1)
    changed = client.patch(
        "/api/v1/deployment-templates/deploy/",
        {"steps": [*SHELL, {"name": "Wait", "kind": "wait", "params": {"seconds": 5}}]},
        format="json",
    )
    assert (changed.status_code, changed.json()["version"], len(changed.json()["steps"])) == (200, 2, 2)
    assert (
        setup["client"]
        .post("/api/v1/deployment-templates/", {"slug": "x", "name": "X", "steps": SHELL}, format="json")
        .status_code
        == 403
    )
