"""The continuous-deployment flow with a person in it: CI registers a build, it reaches staging on its own,
one release manager approves in Chromium, another through the API, and it deploys."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from apps.deployments.models import Deployment
from apps.releases.models import Release
from tests.deployments.conftest import _Server, wait_for
from tests.deployments.test_cd_flow import _first, _world, register_build
from tests.e2e.conftest import expect, shot
from tests.factories import bearer_client

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


@pytest.fixture
def artifact_server():
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_release_manager_approves_in_the_browser(
    page: Page, live_server, sign_in, artifact_server, tmp_path, celery_worker, problems
):
    world = _world(artifact_server, tmp_path)
    register_build(world, artifact_server, "1.0.0")
    release = Release.objects.get(version="1.0.0")
    staging = wait_for(_first(release, "staging"), {"pending_approval"}, timeout=60)

    first, second = world["approvers"][:2]
    sign_in(user=first, password="pw")
    page.goto(f"{live_server.url}/deployments/{staging.pk}/")
    panel = page.get_by_test_id("approval-panel")
    expect(panel.get_by_test_id("approval-count")).to_have_text("0 of 2 approvals")
    panel.get_by_role("textbox").fill("Plan reviewed.")
    panel.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("approval-count")).to_have_text("1 of 2 approvals")
    shot(page, "cd-flow-approval")

    client = bearer_client(second, scopes=("read", "deployments:write"))
    assert client.post(f"/api/v1/deployments/{staging.pk}/approve/", {}, format="json").status_code == 200
    expect(page.get_by_test_id("deployment-status")).to_have_text("Succeeded", timeout=45_000)
    assert wait_for(Deployment.objects.get(pk=staging.pk)).status == "succeeded"
    assert (tmp_path / "staging" / "current").is_symlink()
    problems.assert_none()
