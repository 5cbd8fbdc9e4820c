"""Inventory in the browser: the dashboard matrix, a search for a version on the Inventory page followed to the
deployment that put it there, an environment's inventory tab with a drifted target, and two environments
compared — after real deployments by a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import variable_create
from apps.inventory.services import target_report
from apps.releases.services import release_create
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import snap
from tests.e2e.test_rollouts import wait_until
from tests.factories import make_application, make_environment, make_target, make_team, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(e2e_user, celery_worker):
    """The shop runs 1.0.0 in staging and 2.0.0 in dev (both deployed by a worker); dev's web-2 reports 1.9.0."""
    team = make_team("shop-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    dev = make_environment(team, "shop-dev", name="Shop dev", tier="development")
    staging = make_environment(team, "shop-staging", name="Shop staging", tier="staging")
    for environment in (dev, staging):
        for i in (1, 2):
            make_target(environment, f"web-{i}", address=f"web-{i}.{environment.slug}.internal")
    variable_create(actor=None, environment=dev, name="LOG_LEVEL", value="debug")
    variable_create(actor=None, environment=staging, name="LOG_LEVEL", value="info")
    application = make_application(team, "shop", name="Shop")
    releases = {
        version: release_create(
            actor=None,
            application=application,
            artifacts=[register(application, version, by=e2e_user, commit=f"{version[0]}" * 40)],
        )
        for version in ("1.0.0", "2.0.0")
    }
    template = template_create(
        actor=None,
        slug="shop-install",
        name="Shop install",
        steps=[{"name": "Install", "kind": "shell", "params": {"command": "echo installing {{ release.version }}"}}],
    )
    deployments = {}
    for environment, version in ((staging, "1.0.0"), (dev, "2.0.0")):
        deployment = deployment_create(
            actor=e2e_user, release=releases[version], environment=environment, template=template
        )
        deployments[environment.slug] = wait_until(deployment, lambda d: d.is_final)
        assert deployments[environment.slug].status == "succeeded"
    target_report(
        actor=e2e_user,
        environment=dev,
        target=dev.targets.get(name="web-2"),
        application=application,
        version="1.9.0",
    )
    return {"dev": dev, "staging": staging, "deployments": deployments}


def test_find_where_a_version_runs_and_follow_it_to_its_deployment(page: Page, live_server, sign_in, shop, problems):
    sign_in()
    matrix = page.get_by_test_id("matrix")
    row = matrix.locator("tr", has_text="Shop")
    expect(row.locator('[data-state="drifted"]')).to_contain_text("2.0.0")
    expect(row.locator('[data-state="succeeded"]')).to_contain_text("1.0.0")
    snap(page, "dashboard-matrix")

    page.get_by_role("link", name="Inventory", exact=True).click()
    page.get_by_label("Search").fill("shop 2.0.0")
    page.get_by_role("button", name="Find").click()
    result = page.get_by_test_id("search-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("Shop dev")
    snap(page, "inventory-search")
    deployment = shop["deployments"]["shop-dev"]
    result.get_by_test_id("location-deployment").first.click()
    expect(page).to_have_url(f"{live_server.url}/deployments/{deployment.pk}/")
    expect(page.locator("h1")).to_contain_text(f"#{deployment.pk}")

    page.goto(f"{live_server.url}/environments/shop-dev/inventory/")
    expect(page.get_by_test_id("drift-alert")).to_contain_text("1 target reading differs")
    expect(page.get_by_test_id("drift-badge")).to_contain_text("runs 1.9.0")
    snap(page, "inventory-environment")

    page.get_by_role("link", name="Compare with…").click()
    page.get_by_label("Right").select_option("shop-staging")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_test_id("compare-applications").locator("tbody tr")).to_contain_text("2.0.0")
    expect(page.get_by_test_id("compare-variables")).to_contain_text("LOG_LEVEL")
    snap(page, "inventory-compare")

    page.goto(f"{live_server.url}/environments/shop-dev/")
    page.get_by_role("link", name="web-2", exact=True).click()
    expect(page.get_by_test_id("target-timeline")).to_contain_text("2.0.0")
    expect(page.get_by_test_id("target-readings")).to_contain_text("drifted: runs 1.9.0")
    snap(page, "inventory-target")
    page.goto(f"{live_server.url}/applications/shop/")
    where = page.get_by_test_id("where-deployed")
    expect(where.locator("tr", has_text="Shop staging")).to_contain_text("1.0.0")
    expect(where.locator("tr", has_text="Shop dev")).to_contain_text("2.0.0")
    snap(page, "application-where-deployed")
    problems.assert_none()
