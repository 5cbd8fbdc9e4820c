"""Browser journey through approvals: an approver finds a deployment in their inbox, reads the approval panel
(what changes, the plan digest), approves it with htmx, and follows it live while a second approver's decision
(through the API) lets a real Celery worker run it. Then the environment's policy, on its Approvals tab.

Screenshots go to var/screenshots (like every journey) and to /tmp/shots.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.approvals.models import ApprovalPolicy, Decision
from apps.approvals.services import policy_set
from apps.catalog.services import application_grant
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_grant
from apps.inventory.services import record_installation
from apps.releases.services import release_create
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import LIVE, navbar, snap
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    register,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def wait_until_final(deployment: Deployment, timeout: float = 60) -> Deployment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if deployment.is_final:
            return deployment
        time.sleep(0.2)
    raise AssertionError(f"{deployment} still {deployment.status}")


@pytest.fixture
def shop(e2e_user, celery_worker):
    """Shop staging (web-1, web-2) runs shop 1.0.0, deployed earlier by a real worker; since then it needs two
    release managers' approvals. Dora (web team) asked for shop 1.1.0, which Rita released. Nora (the signed-in
    user) is a release manager and, with the platform team, manages staging; Amir is the other release manager."""
    platform = make_team("platform", members=(e2e_user,))
    web = make_team("web-team")
    managers = make_team("release-managers")
    dora = make_user("dora", first_name="Dora", last_name="Diaz")
    rita = make_user("rita", first_name="Rita", last_name="Ross")
    amir = make_user("amir", first_name="Amir", last_name="Khan")
    for person in (dora, rita):
        team_add_member(actor=None, team=web, user=person)
    for person in (e2e_user, amir):
        team_add_member(actor=None, team=managers, user=person)
    staging = make_environment(platform, "shop-staging", name="Shop staging", tier="staging")
    targets = [make_target(staging, name, address=f"{name}.staging.internal") for name in ("web-1", "web-2")]
    environment_grant(actor=None, environment=staging, team=web, action="deploy")
    environment_grant(actor=None, environment=staging, team=managers, action="approve")
    application = make_application(web, "shop", name="Shop")
    for team in (platform, managers):
        application_grant(actor=None, application=application, team=team, action="view")
    template = template_create(
        actor=None,
        slug="shop-rollout",
        name="Shop rollout",
        steps=[
            {
                "name": "Install",
                "kind": "shell",
                "params": {"command": "echo installing {{ artifact.version }} on {{ target.name }}; sleep 1"},
            }
        ],
    )
    releases = {}
    for version in ("1.0.0", "1.1.0"):
        artifact = register(application, version, by=rita)
        releases[version] = release_create(actor=rita, application=application, artifacts=[artifact])
    options = {"health_gate": False}
    earlier = deployment_create(
        actor=dora, release=releases["1.0.0"], environment=staging, template=template, strategy_options=options
    )
    assert wait_until_final(earlier).status == "succeeded"
    installed = releases["1.0.0"].release_artifacts.get().artifact
    for target in targets:  # a shell step installs nothing the inventory sees: record what it did
        record_installation(deployment=earlier, target_id=target.pk, artifact_id=installed.pk)
    policy_set(actor=None, environment=staging, required_approvals=2, eligible_teams=[managers])
    deployment = deployment_create(
        actor=dora, release=releases["1.1.0"], environment=staging, template=template, strategy_options=options
    )
    assert deployment.status == "pending_approval"
    return {"deployment": deployment, "amir": amir, "staging": staging, "managers": managers}


def test_an_approver_approves_from_the_inbox_and_follows_the_deployment_live(
    page: Page, live_server, sign_in, e2e_user, shop, problems
):
    deployment = shop["deployment"]
    sign_in()

    # The dashboard and the navigation say something waits for Nora.
    card = page.get_by_test_id("waiting-card")
    expect(card.get_by_test_id("waiting-row")).to_have_count(1)
    expect(card).to_contain_text("Shop 1.1.0")
    expect(navbar(page).get_by_test_id("approvals-badge")).to_have_text("1 waiting for you")
    snap(page, "dashboard-approvals")

    # The inbox.
    navbar(page).get_by_role("link", name=re.compile(r"^Approvals")).click()
    expect(page).to_have_url(f"{live_server.url}/approvals/")
    expect(page.locator("h1")).to_have_text("Approvals")
    rows = page.get_by_test_id("approval-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"#{deployment.pk}")
    expect(rows.first).to_contain_text("Shop staging")
    expect(rows.first).to_contain_text("Dora Diaz")
    expect(rows.first.get_by_test_id("approvals-so-far")).to_contain_text("0/2")
    snap(page, "approvals-inbox")

    # The deployment, with its approval panel.
    rows.first.get_by_role("link", name="Review").click()
    expect(page).to_have_url(f"{live_server.url}/deployments/{deployment.pk}/#approval")
    expect(page.get_by_test_id("deployment-status")).to_have_text("Pending approval")
    panel = page.get_by_test_id("approval-panel")
    expect(panel.get_by_test_id("approval-count")).to_have_text("0 of 2 approvals")
    expect(panel.get_by_test_id("approval-digest")).to_have_text(f"{deployment.plan_digest[:12]}…")
    expect(panel.get_by_test_id("no-decisions")).to_be_visible()
    changes = panel.get_by_test_id("approval-change")
    expect(changes).to_have_count(2)
    expect(changes.first).to_contain_text(re.compile(r"web-1\s*1\.0\.0\s*1\.1\.0"))
    expect(panel.get_by_test_id("approval-plan-link")).to_have_attribute("href", f"/deployments/{deployment.pk}/plan/")

    # Reject without a comment: the service's error, which a poll of the live part keeps, as it keeps typing.
    page.evaluate("window.rhMarker = 'same page'")
    panel.get_by_role("button", name="Reject").click()
    expect(panel.get_by_test_id("approval-error")).to_have_text("A rejection needs a comment.")
    comment = panel.get_by_label("Comment")
    comment.fill("Checked the diff and the migration; go.")
    with page.expect_response(lambda response: response.url.endswith("/progress/")):
        pass
    with page.expect_response(lambda response: response.url.endswith("/progress/")):
        pass
    expect(comment).to_have_value("Checked the diff and the migration; go.")
    expect(panel.get_by_test_id("approval-error")).to_have_text("A rejection needs a comment.")
    assert not Decision.objects.exists()

    # Approve with the comment: the panel counts 1 of 2, without a reload.
    panel.get_by_role("button", name="Approve").click()
    expect(panel.get_by_test_id("approval-count")).to_have_text("1 of 2 approvals")
    expect(panel.get_by_test_id("your-decision")).to_contain_text("You approved this deployment")
    expect(panel.get_by_test_id("decision")).to_have_count(1)
    expect(panel.get_by_test_id("decision")).to_contain_text("Nora Berg")
    expect(panel.get_by_test_id("decision")).to_contain_text("Checked the diff and the migration; go.")
    expect(panel.get_by_role("button", name="Approve")).to_have_count(0)
    expect(panel.get_by_test_id("approval-error")).to_have_count(0)
    assert page.evaluate("window.rhMarker") == "same page"
    decision = Decision.objects.get()
    assert (decision.user, decision.plan_digest) == (e2e_user, deployment.plan_digest)
    page.locator("#approval").scroll_into_view_if_needed()
    snap(page, "approval-panel")

    # Amir approves through the API; Nora's page follows the deployment as it runs, without a reload.
    api = bearer_client(shop["amir"], scopes=("read", "deployments:write"))
    response = api.post(
        f"/api/v1/deployments/{deployment.pk}/approve/",
        {"comment": "Agreed.", "plan_digest": deployment.plan_digest},
        format="json",
    )
    assert response.status_code == 200, response.content
    status = page.get_by_test_id("deployment-status")
    expect(status).to_have_text(re.compile("Running|Succeeded"), timeout=LIVE)
    expect(panel.get_by_test_id("approval-count")).to_have_text("2 of 2 approvals")
    expect(panel.get_by_test_id("decision")).to_have_count(2)
    expect(panel.get_by_test_id("decision").nth(1)).to_contain_text("Agreed.")
    expect(status).to_have_text("Succeeded", timeout=LIVE)
    expect(page.get_by_test_id("approval-panel")).to_contain_text("Approved")
    expect(page.get_by_test_id("progress-count")).to_contain_text("2 of 2 steps done")
    assert page.evaluate("window.rhMarker") == "same page"
    snap(page, "approval-panel-approved")

    # The inbox is empty now (the badge, drawn with the page, goes with the next one); Decided holds the approval.
    navbar(page).get_by_role("link", name=re.compile(r"^Approvals")).click()
    expect(navbar(page).get_by_test_id("approvals-badge")).to_have_count(0)
    expect(page.get_by_test_id("empty-state")).to_contain_text("Nothing waits for your approval.")
    page.get_by_role("link", name=re.compile("^Decided")).click()
    expect(page.get_by_test_id("approval-row")).to_have_count(1)
    expect(page.get_by_test_id("approval-row").first).to_contain_text("Approved")
    problems.assert_none()


def test_a_manager_changes_the_policy_on_the_environment_page(page: Page, live_server, sign_in, shop, problems):
    sign_in()
    page.goto(f"{live_server.url}/environments/shop-staging/")
    expect(page.get_by_test_id("approval-summary")).to_contain_text("need 2 approvals from Release Managers")
    page.locator(".rh-tabs").get_by_role("link", name="Approvals").click()
    expect(page).to_have_url(f"{live_server.url}/environments/shop-staging/approvals/")
    policy = page.get_by_test_id("approval-policy")
    expect(policy.get_by_test_id("policy-required")).to_have_text("2 different people approve")
    expect(page.get_by_test_id("environment-waiting")).to_contain_text(f"#{shop['deployment'].pk}")

    form = page.get_by_test_id("policy-form")
    expect(form.get_by_label("Approvals needed")).to_have_value("2")
    expect(form.get_by_label("Release Managers")).to_be_checked()
    form.get_by_label("Approvals needed").fill("1")
    form.get_by_label("Expires after (hours)").fill("24")
    form.get_by_label("One rejection rejects the deployment").uncheck()
    form.get_by_role("button", name="Replace policy").click()
    expect(page.get_by_role("alert").filter(has_text="Policy replaced")).to_be_visible()
    expect(policy.get_by_test_id("policy-required")).to_have_text("1 person approves")
    expect(policy.get_by_test_id("policy-expiry")).to_contain_text("after 1 day")
    expect(policy.get_by_test_id("policy-rejection")).to_contain_text("still goes on")
    saved = ApprovalPolicy.objects.get(environment=shop["staging"])
    assert (saved.required_approvals, saved.rejection_rejects) == (1, False)
    snap(page, "environment-approvals")
    problems.assert_none()
