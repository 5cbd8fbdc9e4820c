"""The policy set editor in the browser: a new set with two rules, a bad parameter caught next to its rule, fixed,
saved, and the set's page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import Permission

from apps.accounts.services import team_add_member
from apps.policies.models import PolicySet
from tests.e2e.conftest import PASSWORD, expect
from tests.e2e.test_deployments import navbar, snap
from tests.factories import make_application, make_environment, make_release, make_team, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_create_a_policy_set_with_two_rules(page: Page, live_server, sign_in, e2e_user, problems):
    team = make_team("shop-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    e2e_user.user_permissions.add(*Permission.objects.filter(codename__endswith="_policyset"))
    make_environment(team, "shop-prod", name="Shop production", tier="production")
    make_environment(team, "shop-staging", name="Shop staging", tier="staging")
    application = make_application(team, "shop", name="Shop")
    make_release(application, [register(application, "2.0.0", by=e2e_user, branch="feature/checkout")])
    sign_in()

    navbar(page).get_by_role("link", name="Policies", exact=True).click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.locator(".rh-page-header").get_by_role("link", name="New policy set").click()
    expect(page.locator("h1")).to_have_text("New policy set")
    page.get_by_label("Slug").fill("production")
    page.get_by_label("Name").fill("Production guardrails")
    page.get_by_label("Description").fill("What every production deployment must meet.")
    page.get_by_label("Environments").select_option(["shop-prod"])
    page.get_by_label("Staging").check()

    rows = page.get_by_test_id("rule-row")
    rows.nth(0).get_by_label("Kind").select_option("allowed_branches")
    rows.nth(0).get_by_label("Parameters (JSON)").fill('{"patterns": ["main", "release/*"]}')
    rows.nth(0).get_by_label("Overridable").uncheck()
    page.get_by_test_id("add-rule").click()  # a round trip to the server: it works without JavaScript
    expect(rows).to_have_count(2)
    expect(page.get_by_label("Name")).to_have_value("Production guardrails")
    rows.nth(1).get_by_label("Kind").select_option("deployment_window")
    rows.nth(1).get_by_label("Parameters (JSON)").fill(
        '{"weekdays": ["mon", "tue", "wed"], "start": "09:00", "end": 16}'
    )
    rows.nth(1).get_by_label("Two-person override").check()
    page.get_by_test_id("rule-kind").filter(has_text="Deployment window").locator("summary").click()
    page.get_by_role("button", name="Create policy set").click()

    expect(page.get_by_test_id("form-errors")).to_contain_text("Some rules need fixing")
    expect(rows.nth(1).locator(".invalid-feedback")).to_contain_text("end: A time such as 09:00.")
    expect(rows.nth(0).locator(".invalid-feedback")).to_have_count(0)
    page.get_by_test_id("rule-kind").filter(has_text="Deployment window").locator("summary").click()
    snap(page, "policy-editor")
    rows.nth(1).get_by_label("Parameters (JSON)").fill(
        '{"weekdays": ["mon", "tue", "wed"], "start": "09:00", "end": "16:00"}'
    )
    page.get_by_role("button", name="Create policy set").click()

    expect(page.locator(".alert-success")).to_contain_text("Policy set “Production guardrails” created.")
    expect(page.get_by_test_id("policy-rule")).to_have_count(2)
    expect(page.get_by_test_id("policy-rule").nth(0)).to_contain_text("main, release/*")
    expect(page.get_by_test_id("policy-rule").nth(1)).to_contain_text("two-person override")
    expect(page.get_by_test_id("attached-environment")).to_contain_text("Shop production")
    dry_run = page.get_by_test_id("dry-run")
    dry_run.get_by_label("Release").select_option(label="Shop 2.0.0")
    dry_run.get_by_label("Environment").select_option("shop-prod")
    dry_run.get_by_role("button", name="Check now").click()
    expect(page.get_by_test_id("dry-run-results").locator('[data-passed="false"]').first).to_contain_text(
        "feature/checkout"
    )
    snap(page, "policy-detail")
    policy_set = PolicySet.objects.get(slug="production")
    assert [rule.kind for rule in policy_set.rules.all()] == ["allowed_branches", "deployment_window"]

    page.get_by_test_id("history-tab").click()
    expect(page.get_by_test_id("history-table")).to_contain_text("patterns: main, release/*")
    page.goto(f"{live_server.url}/environments/shop-prod/policies/")
    page.get_by_role("link", name="Production guardrails").click()
    expect(page.locator("h1")).to_contain_text("Production guardrails")
    problems.assert_none()


def test_the_editor_works_without_javascript(browser, live_server, e2e_user):
    """Add rule and the rule kinds' help are plain HTML; deleting asks on a page of its own."""
    team = make_team("ops")
    team_add_member(actor=None, team=team, user=e2e_user)
    e2e_user.user_permissions.add(*Permission.objects.filter(codename__endswith="_policyset"))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(e2e_user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{live_server.url}/policies/new/")
        page.get_by_label("Slug").fill("everywhere")
        page.get_by_label("Name").fill("Everywhere")
        page.get_by_label("Every environment").check()
        rows = page.get_by_test_id("rule-row")
        rows.nth(0).get_by_label("Kind").select_option("no_freeze")
        page.get_by_test_id("add-rule").click()
        expect(rows).to_have_count(2)
        rows.nth(1).get_by_label("Kind").select_option("change_ticket")
        rows.nth(1).get_by_label("Parameters (JSON)").fill('{"pattern": "^CHG-[0-9]+$"}')
        page.get_by_test_id("rule-kind").filter(has_text="Change ticket").locator("summary").click()
        expect(page.get_by_test_id("rule-kind").filter(has_text="Change ticket")).to_contain_text("regular expression")
        page.get_by_role("button", name="Create policy set").click()
        expect(page.get_by_test_id("policy-rule")).to_have_count(2)

        page.get_by_role("link", name="Delete").click()
        expect(page.locator("h1")).to_have_text("Delete Everywhere?")
        page.get_by_role("button", name="Delete policy set").click()
        expect(page.locator(".alert-success")).to_contain_text("Policy set “Everywhere” deleted.")
        assert not PolicySet.objects.exists()
    finally:
        context.close()
