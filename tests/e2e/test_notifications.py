"""Browser journeys of the notifications pages, in Chromium (the fixtures of tests/e2e)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from apps.accounts.services import team_add_member
from apps.approvals.models import Decision
from apps.notifications.links import action_link
from apps.notifications.models import Subscription
from tests.e2e.conftest import expect, shot
from tests.factories import make_environment, make_team

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_subscribe_from_the_user_menu_then_pause(page, live_server, sign_in, e2e_user, problems):
    team = make_team(members=(e2e_user,))
    make_environment(team, "prod", name="Production", tier="production")
    sign_in()
    page.get_by_test_id("user-menu").click()
    page.get_by_role("link", name="Notifications").click()
    expect(page.locator("h1")).to_have_text("Notifications")
    page.get_by_label("A deployment failed").check()
    page.get_by_label("A deployment to production succeeded").check()
    page.get_by_label("Environment").select_option("prod")
    expect(page.get_by_label("Webhook URL")).to_be_hidden()  # email needs neither URL
    page.get_by_label("Channel").select_option("webhook")
    expect(page.get_by_label("Webhook URL")).to_be_visible()
    expect(page.get_by_label("Chat URL (apprise)")).to_be_hidden()
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("alert")).to_contain_text("Subscribed.")
    row = page.get_by_test_id("subscription-row")
    expect(row).to_contain_text("A deployment failed")
    expect(row).to_contain_text("Production")
    expect(row).to_contain_text("active")
    shot(page, "notifications-page")
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_test_id("subscription-row")).to_contain_text("paused")
    assert Subscription.objects.get().active is False
    problems.assert_none()


def test_approve_from_an_emailed_link(page, live_server, sign_in, e2e_user, problems):
    from tests.approvals.test_approvals import _scene, request_deploy

    scene = _scene(required=1)
    team_add_member(actor=None, team=scene["managers"], user=e2e_user)
    deployment = request_deploy(scene)
    sign_in()
    page.goto(live_server.url + urlsplit(action_link(e2e_user, deployment, "approve")).path)
    expect(page.locator("h1")).to_have_text(f"Approve deployment #{deployment.pk}?")
    expect(page.get_by_test_id("plan-digest")).to_have_text(deployment.plan_digest)
    shot(page, "notifications-act")
    assert not Decision.objects.exists()
    page.get_by_label("Comment").fill("Plan checked.")
    page.get_by_role("button", name=f"Approve deployment #{deployment.pk}").click()
    expect(page).to_have_url(f"{live_server.url}/deployments/{deployment.pk}/")
    expect(page.get_by_role("alert").first).to_contain_text(f"You approved Deployment #{deployment.pk}.")
    assert Decision.objects.get().user == e2e_user
    problems.assert_none()
