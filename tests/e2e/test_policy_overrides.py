"""Overriding policy rules in the browser: a held deployment, a rule overridden with a justification, and a
colleague's two-person override confirmed by a second manager."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create, template_create
from apps.policies.rules import WEEKDAYS
from apps.policies.services import policy_set_create
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import snap
from tests.factories import (
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_a_manager_overrides_a_window_and_confirms_a_colleagues_break_glass(
    page: Page, live_server, sign_in, e2e_user, problems
):
    team = make_team("web-team")
    team_add_member(actor=None, team=team, user=e2e_user)
    staging = make_environment(team, "shop-staging", name="Shop staging", tier="staging")
    make_target(staging, "web-1")
    application = make_application(team, "shop", name="Shop")
    release = make_release(application, [register(application, "1.0.0", by=e2e_user)])
    template = template_create(
        actor=None, slug="echo", name="Echo", steps=[{"name": "Say", "kind": "shell", "params": {"command": "true"}}]
    )
    today = WEEKDAYS[datetime.now(UTC).weekday()]
    policy_set_create(
        actor=make_user("root", is_superuser=True),
        slug="staging-guard",
        name="Staging guard",
        environments=[staging],
        rules=[
            {
                "kind": "deployment_window",
                "params": {"weekdays": [d for d in WEEKDAYS if d != today], "start": "00:00", "end": "24:00"},
            },
            {"kind": "change_ticket", "params": {"pattern": r"^CHG-\d+$"}, "two_person": True},
        ],
    )
    alex = make_user("alex")
    team_add_member(actor=None, team=team, user=alex)
    deployment = deployment_create(
        actor=alex,
        release=release,
        environment=staging,
        template=template,
        override_rules=["staging-guard/change_ticket"],
        override_reason="The ticket system is down (INC-881); change approved on the bridge call.",
    )
    assert Deployment.objects.get(pk=deployment.pk).status == "queued"

    sign_in()
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    expect(page.get_by_test_id("status-reason")).to_contain_text("waits for a second person")
    waiting = page.get_by_test_id("policy-override")
    expect(waiting).to_contain_text("Override waiting for a second person")
    expect(waiting).to_contain_text("INC-881")
    form = page.get_by_test_id("override-policies-form")
    expect(form).to_contain_text("staging-guard/deployment_window")
    snap(page, "policy-override-waiting")

    form.get_by_label("Justification").fill("Release train slipped; the customer demo is tomorrow morning.")
    form.get_by_role("button", name="Override").click()
    expect(page.get_by_role("alert").first).to_contain_text("overridden")
    expect(page.locator('[data-testid="policy-override"][data-effective="true"]')).to_have_count(1)

    page.get_by_test_id("confirm-override").click()
    expect(page.locator('[data-testid="policy-override"][data-effective="true"]')).to_have_count(2)
    expect(page.locator('[data-overridden="true"]')).to_have_count(2)
    assert Deployment.objects.get(pk=deployment.pk).status == "running"
    snap(page, "policy-override-confirmed")
    problems.assert_none()
