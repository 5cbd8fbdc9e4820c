"""A blue/green rollout in the browser: a deployer watches the switch on the deployment page, then switches the traffic
back while the old slot is kept, with a real worker and a real traffic hook."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.models import Deployment, StepRun
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_update
from apps.releases.services import release_create
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import LIVE, snap
from tests.factories import make_application, make_environment, make_target, make_team, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def wait_until(deployment: Deployment, done, timeout: float = 60) -> Deployment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if done(deployment):
            return deployment
        time.sleep(0.2)
    raise AssertionError(f"{deployment} still {deployment.status}: {deployment.status_reason}")


@pytest.fixture
def production(e2e_user, tmp_path):
    """Nora's team deploys the shop to a blue/green production (one target per slot) whose traffic hook writes
    the live slot to a file."""
    team = make_team("shop-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    environment = make_environment(team, "shop-prod", name="Shop production", tier="production")
    for slot in ("blue", "green"):
        make_target(environment, f"{slot}-1", slot=slot, address=f"{slot}-1.prod.internal")
    live = tmp_path / "live"
    hook = {"kind": "shell", "params": {"command": f"echo {{{{ traffic.slot }}}} {{{{ traffic.weight }}}} > {live}"}}
    environment_update(actor=None, environment=environment, traffic_hook=hook)
    application = make_application(team, "shop", name="Shop")
    releases = {
        version: release_create(
            actor=None, application=application, artifacts=[register(application, version, by=e2e_user)]
        )
        for version in ("1.0.0", "2.0.0")
    }
    template = template_create(
        actor=None,
        slug="shop-install",
        name="Shop install",
        steps=[{"name": "Install", "kind": "shell", "params": {"command": "echo installing {{ release.version }}"}}],
    )
    return {"environment": environment, "releases": releases, "template": template, "live": live}


def test_a_deployer_switches_the_traffic_back_while_the_old_slot_is_kept(
    page: Page, live_server, sign_in, e2e_user, production, celery_worker, problems
):
    def deploy(version: str, **options) -> Deployment:
        return deployment_create(
            actor=e2e_user,
            release=production["releases"][version],
            environment=production["environment"],
            template=production["template"],
            strategy="blue_green",
            strategy_options={"health_gate": False, **options},
        )

    assert wait_until(deploy("1.0.0"), lambda d: d.is_final).status == "succeeded"
    assert production["live"].read_text() == "green 100\n"
    deployment = deploy("2.0.0", keep_old_slot_for="10m")
    wait_until(deployment, lambda d: StepRun.objects.filter(deployment=d, kind="wait", status="waiting").exists())

    sign_in()
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    rollout = page.get_by_test_id("rollout")
    expect(rollout.get_by_test_id("slot-blue").get_by_test_id("slot-state")).to_have_text("live")
    expect(rollout.get_by_test_id("slot-green")).to_contain_text("0% of traffic")
    expect(rollout.get_by_test_id("wait-left")).to_contain_text("left")
    expect(page.get_by_test_id("strategy-summary")).to_have_text(
        "install on the idle slot, then switch; old slot kept 10m, no health gate"
    )
    snap(page, "rollout-blue-green-kept")

    page.once("dialog", lambda dialog: dialog.accept())
    rollout.get_by_role("button", name="Switch back").click()
    expect(page.get_by_test_id("deployment-status")).to_contain_text("Rolled back", timeout=LIVE)
    rollout = page.get_by_test_id("rollout")
    expect(rollout.get_by_test_id("slot-green").get_by_test_id("slot-state")).to_have_text("live")
    expect(page.get_by_test_id("status-reason")).to_contain_text("Rolled back by nora.")
    snap(page, "rollout-blue-green-switched-back")
    assert production["live"].read_text() == "blue 0\n"  # the hook sent everything back to green
    production["environment"].refresh_from_db()
    assert production["environment"].live_slot == "green"
    problems.assert_none()
