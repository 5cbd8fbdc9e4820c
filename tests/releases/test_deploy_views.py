"""Deploying from the release page: the form, the plan preview, the deploy button."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.services import team_add_member
from apps.catalog.services import application_update
from apps.deployments.models import Deployment
from apps.deployments.services import template_create, transition
from apps.environments.services import environment_grant, lifecycle_create, variable_create
from apps.releases.models import ReleaseBlock
from tests.factories import (
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


STEPS = [
    {
        "name": "Say",
        "kind": "shell",
        "params": {"command": "echo {{ var.GREETING }} to {{ target.name }} with {{ var.TOKEN }}"},
    }
]


@pytest.fixture
def page(db):
    team = make_team()
    dora = make_user("dora")
    team_add_member(actor=None, team=team, user=dora)
    qa = make_environment(team, "qa")
    environment_grant(actor=None, environment=qa, team=team, action="deploy")
    make_target(qa, "web-1")
    variable_create(actor=None, environment=qa, name="GREETING", value="hello")
    variable_create(actor=None, environment=qa, name="TOKEN", value="s3cr3t-token", secret=True)
    application = make_application(team, "shop")
    template = template_create(actor=None, slug="say", name="Say", steps=STEPS)
    release = make_release(application, [register(application, "1.0.0", by=dora)])
    return {"client": browser(dora), "release": release, "qa": qa, "template": template, "team": team}


def test_the_preview_shows_the_rendered_plan_and_its_digest(page):
    url = f"/releases/{page['release'].pk}/preview/?environment=qa&strategy=rolling&batch_size=1&template=say"
    response = page["client"].get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "echo hello to web-1 with •••••••• (secret TOKEN)" in html
    assert 'data-testid="plan-digest"' in html
    assert "s3cr3t" not in html


def test_the_preview_follows_the_environment_default_strategy_and_more_options(page):
    from urllib.parse import urlencode

    from apps.environments.services import environment_update, target_update

    target_update(actor=None, target=page["qa"].targets.get(), health_check_url="http://web-1.example/health")
    make_target(page["qa"], "web-2", health_check_url="http://web-2.example/health")
    environment_update(
        actor=None,
        environment=page["qa"],
        default_strategy="canary",
        default_strategy_options={"stages": [{"weight": 50, "pause": "20s"}, {"weight": 100}]},
    )
    base = f"/releases/{page['release'].pk}/preview/?"
    html = page["client"].get(base + urlencode({"environment": "qa", "template": "say"})).content.decode()
    assert "50% (20s analysis) → 100%" in html  # the environment's default options
    more = urlencode({"environment": "qa", "template": "say", "options": '{"analysis": {"interval": 1}}'})
    html = page["client"].get(base + more).content.decode()
    assert "50% (20s analysis) → 100%" in html  # still the default's stages, with another interval
    assert "Canary 50%: web-1" in html
    bad = urlencode({"environment": "qa", "template": "say", "strategy": "canary", "options": '{"stages": [1]}'})
    html = page["client"].get(base + bad).content.decode()
    assert 'data-testid="plan-error"' in html
    assert "stages.0" in html


def test_an_undefined_variable_is_shown_before_anything_runs(page):
    template_create(
        actor=None,
        slug="broken",
        name="Broken",
        steps=[{"name": "Use", "kind": "shell", "params": {"command": "echo {{ var.NOPE }}"}}],
    )
    html = (
        page["client"]
        .get(f"/releases/{page['release'].pk}/preview/?environment=qa&strategy=all_at_once&template=broken")
        .content.decode()
    )
    assert "var.NOPE is not defined" in html
    assert 'data-testid="plan-error"' in html


def test_deploy_creates_the_deployment_and_opens_it(page):
    response = page["client"].post(
        f"/releases/{page['release'].pk}/deploy/",
        {"environment": "qa", "strategy": "rolling", "batch_size": "1", "health_gate": "on", "template": "say"},
    )
    assert response.status_code == 302
    deployment = Deployment.objects.get()
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    assert (deployment.created_by.username, deployment.strategy) == ("dora", "rolling")
    detail = page["client"].get(f"/releases/{page['release'].pk}/").content.decode()
    assert f"/deployments/{deployment.pk}/" in detail


def test_without_deploy_permission_there_is_nothing_to_choose(page):
    viewer = make_user("vic")
    other = make_team()
    team_add_member(actor=None, team=other, user=viewer)
    environment_grant(actor=None, environment=page["qa"], team=other, action="view")
    from apps.catalog.services import application_grant

    application_grant(actor=None, application=page["release"].application, team=other, action="view")
    client = browser(viewer)
    html = client.get(f"/releases/{page['release'].pk}/").content.decode()
    assert "You may not deploy to any environment" in html
    response = client.post(f"/releases/{page['release'].pk}/deploy/", {"environment": "qa", "strategy": "rolling"})
    assert response.status_code == 302
    assert not Deployment.objects.exists()


def test_the_lifecycle_card_promotes_and_lifts_blocks(db, django_assert_max_num_queries):
    team = make_team()
    dora = make_user("dora")
    team_add_member(actor=None, team=team, user=dora)
    dev, test = make_environment(team, "dev"), make_environment(team, "test")
    for environment in (dev, test):
        make_target(environment, f"{environment.slug}-1")
    flow = lifecycle_create(
        actor=None,
        slug="flow",
        name="Flow",
        stages=[{"name": "Dev", "environments": [dev]}, {"name": "Test", "environments": [test]}],
    )
    application = make_application(team, "shop")
    template = template_create(
        actor=None, slug="noop", name="Noop", steps=[{"name": "W", "kind": "wait", "params": {"seconds": 0}}]
    )

    application_update(actor=None, application=application, default_template=template, lifecycle=flow)
    release = make_release(application, [register(application, "1.0.0", by=dora)])
    client = browser(dora)
    html = client.get(f"/releases/{release.pk}/").content.decode()
    assert 'data-testid="release-lifecycle"' in html
    assert "Promote to Dev" in html
    response = client.post(f"/releases/{release.pk}/promote/")
    deployment = Deployment.objects.get(release=release, environment=dev)
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    # Test is refused until dev succeeded; a failure there blocks the release in dev.
    Deployment.objects.filter(pk=deployment.pk).update(status="running")
    deployment.refresh_from_db()
    transition(deployment, "failed", reason="Smoke test failed.")
    block = ReleaseBlock.objects.get(release=release, environment=dev)
    html = client.get(f"/releases/{release.pk}/").content.decode()
    assert "Blocked here:" in html
    assert "Smoke test failed." in html
    client.post(f"/releases/{release.pk}/unblock/", {"environment": "dev", "reason": "Fixed the smoke test."})
    block.refresh_from_db()
    assert (block.lifted_by, block.lift_reason) == (dora, "Fixed the smoke test.")
    with django_assert_max_num_queries(40):
        client.get(f"/releases/{release.pk}/")
