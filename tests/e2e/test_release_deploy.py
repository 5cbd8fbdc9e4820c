"""Deploying from a release's page in Chromium: choose an environment and a strategy, read the plan preview,
press Deploy, and watch the deployment finish on its page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.models import Deployment
from apps.deployments.services import template_create
from apps.environments.services import environment_grant
from apps.releases.services import release_create
from tests.e2e.conftest import expect, shot
from tests.factories import make_application, make_environment, make_target, make_team, make_variable, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


@pytest.fixture
def release(e2e_user, tmp_path):
    team = make_team("web-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    qa = make_environment(team, "qa", name="QA", tier="test")
    environment_grant(actor=None, environment=qa, team=team, action="deploy")
    for name in ("qa-1", "qa-2", "qa-3"):
        make_target(qa, name, path=str(tmp_path / name))
    make_variable(qa, "GREETING", "hello")
    template_create(
        actor=None,
        slug="greet",
        name="Greet",
        steps=[
            {"name": "Greet", "kind": "shell", "params": {"command": "echo {{ var.GREETING }} > {{ target.path }}"}}
        ],
    )
    application = make_application(team, "shop", name="Shop")
    return release_create(actor=None, application=application, artifacts=[register(application, "3.1.0", by=e2e_user)])


def test_deploy_a_release_from_its_page_after_reading_the_plan(
    page: Page, live_server, sign_in, release, celery_worker, problems, tmp_path
):
    sign_in()
    page.goto(f"{live_server.url}/releases/{release.pk}/")
    form = page.get_by_test_id("deploy-form")
    form.get_by_label("Strategy").select_option("rolling")
    form.get_by_label("Template").select_option("greet")
    form.get_by_label("Batch size").fill("2")
    form.get_by_label("Batch size").press("Tab")  # a change: the preview follows
    plan = page.get_by_test_id("plan")
    expect(plan).to_contain_text("2 phases over 3 targets")
    expect(plan).to_contain_text("echo hello >")
    shot(page, "release-plan-preview")
    page.get_by_test_id("deploy-button").click()
    deployment = Deployment.objects.get()
    expect(page).to_have_url(f"{live_server.url}/deployments/{deployment.pk}/")
    expect(page.get_by_test_id("deployment-status")).to_have_text("Succeeded", timeout=45_000)
    assert (tmp_path / "qa-3").read_text() == "hello\n"
    problems.assert_none()
