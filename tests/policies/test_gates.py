"""Policies guard every deployment: at its request (422 naming the failed rules, or stored results) and again
when it would start (it waits while time may help) — also deployments that CD sets off."""

from __future__ import annotations

from datetime import UTC, datetime

from django.test import Client

from apps.accounts.services import team_add_member
from apps.audit.models import AuditEvent
from apps.catalog.models import CdTrigger
from apps.catalog.services import application_update
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create
from apps.environments.services import lifecycle_create
from apps.policies.rules import WEEKDAYS
from apps.policies.services import policy_set_create
from tests.core.test_worker import wait_for as wait_for_worker
from tests.deployments.conftest import RELEASE_DIR, make_template, wait_for
from tests.deployments.test_cd_flow import register_build
from tests.factories import bearer_client, make_application, make_environment, make_target, make_team, make_user


def _production(http_server, tmp_path):
    team = make_team()
    ci = make_user("ci")
    admin = make_user("admin", is_superuser=True)
    team_add_member(actor=None, team=team, user=ci)
    production = make_environment(team, "prod", tier="production")
    make_target(production, "prod-1", path=str(tmp_path / "prod-1"))
    flow = lifecycle_create(
        actor=None,
        slug="straight",
        name="Straight",
        stages=[{"name": "prod", "automatic": True, "environments": [production]}],
    )
    application = make_application(team, "shop")
    application_update(actor=None, application=application, default_template=make_template(RELEASE_DIR))
    CdTrigger.objects.create(application=application, branch_pattern="**", lifecycle=flow)
    policy_set_create(
        actor=admin,
        slug="prod-branches",
        name="Production branches",
        environments=[production],
        rules=[{"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False}],
    )
    return {"ci": ci, "admin": admin, "production": production}


def test_a_cd_deployment_of_a_feature_branch_to_production_is_refused_and_one_of_main_goes(
    http_server, tmp_path, celery_worker
):
    world = _production(http_server, tmp_path)
    register_build(world, http_server, "1.0.0-feature", "feature/login")
    failed = wait_for_worker(lambda: AuditEvent.objects.filter(verb="promotion.failed").first(), timeout=30)
    assert (
        "Built from a branch not allowed here (main, release/*): 1.0.0-feature (feature/login)."
        in (failed.details["error"])
    )
    assert not Deployment.objects.exists()

    register_build(world, http_server, "1.0.0", "main")
    deployment = wait_for_worker(lambda: Deployment.objects.first(), timeout=30)
    assert wait_for(deployment).status == "succeeded"
    deployment.refresh_from_db()
    assert [(r["kind"], r["passed"]) for r in deployment.policy_results] == [("allowed_branches", True)]


def test_the_api_answers_422_listing_the_failed_rules(stage, celery_worker):
    s = stage(targets=1)
    admin = make_user("root", is_superuser=True)
    policy_set_create(
        actor=admin,
        slug="strict",
        name="Strict",
        environments=[s.environment],
        rules=[
            {"kind": "allowed_strategies", "params": {"strategies": ["canary"]}},
            {"kind": "change_ticket", "params": {"pattern": r"^CHG-\d+$"}},
        ],
    )
    client = bearer_client(s.deployer, scopes=("read", "deployments:write"))
    url = f"/api/v1/releases/{s.releases['1.0.0'].pk}/deploy/"
    body = {"environment": s.environment.slug, "template": s.template.slug, "strategy": "rolling"}
    refused = client.post(url, body, format="json")
    assert refused.status_code == 422
    error = refused.json()
    assert error["error"] == "policy_violation"
    assert error["rules"] == ["strict/allowed_strategies", "strict/change_ticket"]
    assert [r["kind"] for r in error["results"]] == ["allowed_strategies", "change_ticket"]
    assert "allows only canary, not rolling" in error["detail"]
    assert not Deployment.objects.exists()

    body.update(strategy="canary", strategy_options={"stages": [{"weight": 100}]}, change_ticket="CHG-7")
    created = client.post(url, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["change_ticket"] == "CHG-7"
    assert [(r["kind"], r["passed"]) for r in created.json()["policy_results"]] == [
        ("allowed_strategies", True),
        ("change_ticket", True),
    ]

    page = Client()
    page.force_login(s.deployer)
    html = page.get(f"/deployments/{created.json()['id']}/").content.decode()
    assert html.count('data-testid="policy-result" data-passed="true"') == 2
    assert "change ticket <code>CHG-7</code>" in html

    preview = client.get(
        f"/api/v1/releases/{s.releases['2.0.0'].pk}/preview/?environment={s.environment.slug}&template={s.template.slug}"
    )
    assert preview.status_code == 200, preview.json()
    assert [(r["kind"], r["passed"]) for r in preview.json()["policies"]] == [
        ("allowed_strategies", False),  # the environment's default strategy is not canary
        ("change_ticket", False),
    ]


def test_a_deployment_outside_its_window_waits_with_the_reason(stage, celery_worker):
    s = stage(targets=1)
    admin = make_user("root", is_superuser=True)
    now = datetime.now(UTC)
    closed = [day for day in WEEKDAYS if day != WEEKDAYS[now.weekday()]]  # every day but today (UTC)
    policy_set_create(
        actor=admin,
        slug="window",
        name="Window",
        environments=[s.environment],
        rules=[{"kind": "deployment_window", "params": {"weekdays": closed, "start": "00:00", "end": "24:00"}}],
    )
    deployment = deployment_create(
        actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template
    )
    deployment.refresh_from_db()
    assert deployment.status == "queued"
    assert deployment.status_reason.startswith("Held by policy:")
    assert "outside the deployment window" in deployment.status_reason
    assert [(r["kind"], r["passed"], r["waitable"]) for r in deployment.policy_results] == [
        ("deployment_window", False, True)
    ]


def test_the_deploy_form_takes_the_change_ticket_a_policy_asks_for(stage, celery_worker):
    s = stage(targets=1)
    policy_set_create(
        actor=make_user("root", is_superuser=True),
        slug="tickets",
        name="Tickets",
        environments=[s.environment],
        rules=[{"kind": "change_ticket", "params": {"pattern": r"^CHG-\d+$"}}],
    )
    page = Client()
    page.force_login(s.deployer)
    url = f"/releases/{s.releases['1.0.0'].pk}/deploy/"
    form = {"environment": s.environment.slug, "template": s.template.slug, "health_gate": "on", "options": "{}"}
    refused = page.post(url, form, follow=True).content.decode()
    assert "A change ticket reference matching ^CHG-\\d+$ is required." in refused
    assert not Deployment.objects.exists()
    page.post(url, {**form, "change_ticket": " CHG-12 "})
    deployment = Deployment.objects.get()
    assert deployment.change_ticket == "CHG-12"
    assert wait_for(deployment).status == "succeeded"
