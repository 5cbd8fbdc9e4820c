"""The Policies tab in the browser: a production policy set's rules, and a feature-branch build tried against it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.policies.services import policy_set_create
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import snap
from tests.factories import make_application, make_environment, make_release, make_team, make_user, register

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_try_a_release_against_the_production_policies(page: Page, live_server, sign_in, e2e_user, problems):
    team = make_team("shop-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    make_environment(team, "shop-prod", name="Shop production", tier="production", timezone="Europe/Berlin")
    application = make_application(team, "shop", name="Shop")
    make_release(application, [register(application, "2.0.0", by=e2e_user, branch="feature/checkout")])
    policy_set_create(
        actor=make_user("root", is_superuser=True),
        slug="production",
        name="Production guardrails",
        description="What every production deployment must meet.",
        tiers=["production"],
        rules=[
            {"kind": "allowed_strategies", "params": {"strategies": ["canary", "blue_green"]}},
            {"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False},
            {
                "kind": "deployment_window",
                "params": {"weekdays": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"},
            },
        ],
    )
    sign_in()
    page.goto(f"{live_server.url}/environments/shop-prod/")
    page.get_by_test_id("policies-tab").click()
    expect(page.get_by_test_id("policy-rule")).to_have_count(3)
    page.get_by_label("Release").select_option(label="Shop 2.0.0")
    page.get_by_label("Strategy").select_option("canary")
    page.get_by_role("button", name="Check now").click()
    results = page.get_by_test_id("dry-run-results")
    expect(results.locator('[data-passed="false"]').first).to_contain_text("feature/checkout")
    snap(page, "policies-environment")
    problems.assert_none()
