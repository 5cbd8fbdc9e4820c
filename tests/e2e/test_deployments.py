"""Browser journeys through the deployment pages: Chromium driven by Playwright, a real Celery worker running the
deployment, and the page following it live (htmx polling) without a reload.

Screenshots go to var/screenshots (like every journey) and to /tmp/shots.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.models import Deployment, DeploymentTemplate, StepRun
from apps.deployments.services import deployment_create, template_create
from apps.releases.services import release_create
from tests.e2e.conftest import PASSWORD, expect, shot
from tests.factories import make_application, make_environment, make_target, make_team, make_variable, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots")  # noqa: S108 - where reviewers look at the pictures
SECRET = "s3cret-e2e-value-never-shown"
LIVE = 45_000  # ms: how long a live update may take (a worker runs shell steps meanwhile)


def snap(page: Page, name: str) -> None:
    """A full-page screenshot in var/screenshots (like every journey) and in /tmp/shots."""
    shot(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, animations="disabled")


def navbar(page: Page):
    return page.get_by_role("navigation", name="Main navigation")


@pytest.fixture
def shop(e2e_user):
    """Nora's team owns the staging environment (two targets, a secret) and the shop application (release 1.0.0),
    and a development environment where a smoke test failed earlier."""
    team = make_team("web-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    staging = make_environment(team, "shop-staging", name="Shop staging", tier="staging")
    for name in ("web-1", "web-2"):
        make_target(staging, name, address=f"{name}.staging.internal")
    make_variable(staging, "DB_PASSWORD", SECRET, secret=True)
    make_variable(staging, "LOG_LEVEL", "info")
    application = make_application(team, "shop", name="Shop")
    artifact = register(application, "1.0.0", by=e2e_user)
    release = release_create(actor=None, application=application, artifacts=[artifact])
    template = template_create(
        actor=None,
        slug="shop-rollout",
        name="Shop rollout",
        description="Fetch, smoke-test by hand, switch.",
        steps=[
            {
                "name": "Fetch",
                "kind": "shell",
                "params": {"command": "echo fetching {{ artifact.version }} for {{ target.name }}; sleep 2"},
            },
            {
                "name": "Smoke test",
                "kind": "manual_intervention",
                "params": {"instructions": "Place a test order on web-1."},
            },
            {
                "name": "Switch",
                "kind": "shell",
                "params": {"command": "echo switching {{ target.name }} DB={{ var.DB_PASSWORD }}; sleep 1"},
            },
        ],
    )
    dev = make_environment(team, "shop-dev", name="Shop development", tier="development")
    make_target(dev, "dev-1")
    failing = template_create(
        actor=None,
        slug="smoke",
        name="Smoke",
        steps=[{"name": "Check", "kind": "shell", "params": {"command": "exit 4"}}],
    )
    return {"staging": staging, "dev": dev, "release": release, "template": template, "failing": failing}


def wait_until_final(deployment: Deployment, timeout: float = 30) -> Deployment:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if deployment.is_final:
            return deployment
        time.sleep(0.2)
    raise AssertionError(f"{deployment} still {deployment.status}")


def test_a_deployer_follows_a_deployment_live_resumes_it_and_sees_it_succeed(
    page: Page, live_server, sign_in, e2e_user, shop, celery_worker, problems
):
    earlier = deployment_create(
        actor=e2e_user, release=shop["release"], environment=shop["dev"], template=shop["failing"]
    )
    assert wait_until_final(earlier).status == "failed"
    sign_in()
    deployment = deployment_create(
        actor=e2e_user,
        release=shop["release"],
        environment=shop["staging"],
        template=shop["template"],
        strategy_options={"health_gate": False},
    )

    # The list, then the deployment.
    navbar(page).get_by_role("link", name="Deployments", exact=True).click()
    expect(page.locator("h1")).to_have_text("Deployments")
    table = page.get_by_test_id("deployment-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("Shop staging")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("Failed")
    snap(page, "deployments-list")
    # The release's page lists where it goes; open this deployment from there.
    table.locator("tbody tr").first.get_by_role("link", name="1.0.0").click()
    expect(page).to_have_url(f"{live_server.url}/releases/{shop['release'].pk}/")
    page.get_by_test_id("release-deployments").get_by_role("link", name=f"#{deployment.pk}", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/deployments/{deployment.pk}/")
    status = page.get_by_test_id("deployment-status")
    expect(status).to_have_text("Running")
    expect(page.locator("#deployment-live")).to_have_attribute("hx-trigger", "every 2s")
    snap(page, "deployment-running")

    # The page follows the worker by itself: the deployment pauses at the manual step, no reload.
    page.evaluate("window.rhMarker = 'same page'")
    expect(status).to_have_text("Paused", timeout=LIVE)
    assert page.evaluate("window.rhMarker") == "same page"
    expect(page.get_by_test_id("status-reason")).to_contain_text("Place a test order on web-1.")
    fetch_cells = page.get_by_test_id("phase").locator("tbody tr").filter(has_text="web-")
    expect(fetch_cells).to_have_count(2)
    expect(page.get_by_test_id("progress-count")).to_contain_text("2 of 5 steps done")
    snap(page, "deployment-paused")

    # Resume with a comment; the page then follows the rest of the rollout to the end.
    comment = page.get_by_label("Comment")
    comment.fill("Test order 1042 went through.")
    with page.expect_response(lambda response: response.url.endswith("/progress/")):
        pass  # the page refreshes under the person typing: what they typed stays (hx-preserve)
    expect(comment).to_have_value("Test order 1042 went through.")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("alert").filter(has_text="resumed")).to_be_visible()
    manual = StepRun.objects.get(deployment=deployment, kind="manual_intervention")
    assert manual.message == "Resumed by nora. Test order 1042 went through."
    page.evaluate("window.rhMarker = 'after resume'")
    expect(status).to_have_text("Succeeded", timeout=LIVE)
    assert page.evaluate("window.rhMarker") == "after resume"
    expect(page.get_by_test_id("progress-count")).to_contain_text("5 of 5 steps done")
    expect(page.locator("#deployment-live")).to_have_attribute("data-live", "false")
    expect(page.locator("#deployment-live")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    expect(page.get_by_test_id("deployment-controls")).to_be_hidden()  # no earlier release to roll back to
    snap(page, "deployment-detail")

    # A step's log, in a window, with the secret masked.
    page.get_by_test_id("step-run").filter(has_text="Succeeded").last.click()
    log = page.get_by_test_id("run-log-text")
    expect(log).to_contain_text("switching web-2 DB=••••••••")
    expect(page.locator("#run-log-modal")).to_contain_text("Switch")
    page.wait_for_function(
        "getComputedStyle(document.querySelector('#run-log-modal .modal-dialog')).transform === 'none'"
    )
    snap(page, "deployment-log")
    page.locator("#run-log-modal").get_by_role("button", name="Close").click()
    expect(page.locator("#run-log-modal")).to_be_hidden()

    # The plan: the secret is a masked reference.
    page.get_by_role("link", name="Plan").click()
    expect(page.get_by_test_id("plan-phases")).to_contain_text("Batch 1: web-1, web-2")
    expect(page.get_by_test_id("secret-ref").first).to_contain_text("DB_PASSWORD")
    assert SECRET not in page.content()
    snap(page, "deployment-plan")

    page.get_by_role("link", name="History").click()
    expect(page.get_by_test_id("history-table")).to_contain_text("succeeded")
    problems.assert_none()


@pytest.fixture
def template_admin(django_user_model):
    user = django_user_model(username="tina", first_name="Tina", last_name="Moss", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def test_an_administrator_fixes_a_template_the_form_refused_and_makes_version_2(
    page: Page, live_server, sign_in, template_admin, shop, problems
):
    sign_in(template_admin)
    navbar(page).get_by_role("link", name="Deployments", exact=True).click()
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_test_id("template-table")).to_contain_text("Shop rollout")
    snap(page, "deployment-templates")
    page.get_by_test_id("template-table").get_by_role("link", name="Shop rollout").click()
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("h1")).to_have_text("Edit Shop rollout")

    steps = page.get_by_label("Steps")
    steps.fill(
        '[{"name": "Fetch", "kind": "shell", "params": {"command": ""}},\n'
        ' {"name": "Nap", "kind": "sleep", "params": {"seconds": 5}}]'
    )
    page.locator("#step-kinds").get_by_role("button", name="Wait").click()
    expect(page.locator("#kind-wait")).to_contain_text("Seconds to wait.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("The template's steps are not valid.")
    errors = page.locator("#id_steps ~ .invalid-feedback")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("Step 1, params: command: '' should be non-empty")
    expect(errors.nth(1)).to_contain_text("Step 2, kind: Unknown step kind 'sleep'")
    snap(page, "template-edit-errors")
    assert DeploymentTemplate.objects.get(slug="shop-rollout").version == 1

    steps.fill(
        '[{"name": "Fetch", "kind": "shell", "params": {"command": "echo fetch"}},\n'
        ' {"name": "Nap", "kind": "wait", "params": {"seconds": 5}}]'
    )
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert").filter(has_text="saved as version 2")).to_be_visible()
    expect(page.get_by_test_id("template-version")).to_have_text("v2")
    expect(page.get_by_test_id("template-versions").locator(".list-group-item")).to_have_count(2)
    snap(page, "template-detail")
    page.get_by_test_id("template-versions").get_by_text("Version 1").click()
    expect(page.get_by_test_id("template-steps")).to_contain_text("Smoke test")
    problems.assert_none()
