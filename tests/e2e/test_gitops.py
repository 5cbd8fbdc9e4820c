"""The GitOps tab in the browser: a manager puts an environment in pull mode, sees its settings, and removes them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from apps.accounts.services import team_add_member
from apps.audit.models import AuditEvent
from apps.gitops.models import EnvironmentRepository
from tests.e2e.conftest import expect
from tests.e2e.test_deployments import snap
from tests.factories import make_environment, make_team, make_variable

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: {{ var.REPLICAS }}
  template:
    spec:
      containers:
        - name: shop
          image: "{{ artifact.uri }}@{{ artifact.digest }}"
"""


def test_a_manager_puts_an_environment_in_pull_mode(page: Page, live_server, sign_in, e2e_user, problems):
    team = make_team("platform")
    team_add_member(actor=None, team=team, user=e2e_user)
    environment = make_environment(team, "shop-prod", name="Shop production", tier="production")
    make_variable(environment, "GIT_TOKEN", "ghp_never-shown", secret=True)
    make_variable(environment, "FLUX_WEBHOOK", "whsec-never-shown", secret=True)
    make_variable(environment, "REPLICAS", "3")

    sign_in()
    page.goto(f"{live_server.url}/environments/shop-prod/")
    page.get_by_test_id("gitops-tab").click()
    expect(page).to_have_url(f"{live_server.url}/environments/shop-prod/gitops/")
    expect(page.get_by_test_id("gitops-push-mode")).to_contain_text("Shop production is in push mode.")
    snap(page, "gitops-push-mode")

    form = page.get_by_test_id("gitops-form")
    form.get_by_label("Repository URL").fill("https://git.example.com/platform/environments.git")
    form.get_by_label("Branch").fill("main")
    form.get_by_label("File path").fill("../shop/values.yaml")
    form.get_by_label("Manifest template").fill(MANIFEST)
    form.get_by_label("Mode").select_option("pull_request")
    form.get_by_label("Credential").select_option("GIT_TOKEN")
    form.get_by_role("button", name="Switch to pull mode").click()

    # The service's answers land next to their fields; what was typed stays.
    path = page.get_by_label("File path")
    expect(path).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(page.locator("#id_path ~ .invalid-feedback")).to_contain_text("without '..'")
    expect(page.locator("#id_provider ~ .invalid-feedback")).to_contain_text("Pull requests need a provider")
    snap(page, "gitops-form-errors")

    path.fill("shop/values.yaml")
    page.get_by_label("Provider (optional)").select_option("github")
    page.get_by_label("Webhook secret").select_option("FLUX_WEBHOOK")
    page.get_by_label("Health URL").fill("https://shop.example.com/version")
    page.get_by_role("button", name="Switch to pull mode").click()

    expect(page.locator(".rh-messages .alert-success")).to_contain_text("Shop production is in pull mode now")
    expect(page.get_by_test_id("gitops-mode")).to_have_text("Open a pull request")
    expect(page.get_by_test_id("gitops-url")).to_have_text("https://git.example.com/platform/environments.git")
    expect(page.get_by_test_id("gitops-path")).to_have_text("shop/values.yaml")
    expect(page.get_by_test_id("gitops-provider")).to_contain_text("platform/environments")
    expect(page.get_by_test_id("gitops-secrets")).to_contain_text("GIT_TOKEN")
    expect(page.get_by_test_id("gitops-secrets")).to_contain_text("FLUX_WEBHOOK")
    expect(page.get_by_test_id("gitops-template")).to_contain_text("replicas: {{ var.REPLICAS }}")
    expect(page.get_by_role("button", name="Save changes")).to_be_visible()
    assert "never-shown" not in page.content()
    snap(page, "gitops-pull-mode")
    repository = EnvironmentRepository.objects.get(environment=environment)
    assert (repository.provider, repository.webhook_secret_variable) == ("github", "FLUX_WEBHOOK")
    assert repository.manifest_template == MANIFEST

    # Removing asks first.
    page.get_by_test_id("gitops-remove").click()
    expect(page.locator("h1")).to_have_text("Remove the repository of Shop production?")
    snap(page, "gitops-remove")
    page.get_by_test_id("gitops-remove-submit").click()
    expect(page.get_by_test_id("gitops-push-mode")).to_be_visible()
    assert not EnvironmentRepository.objects.filter(environment=environment).exists()
    assert list(
        AuditEvent.objects.filter(verb__startswith="gitops.repository_").order_by("id").values_list("verb", flat=True)
    ) == ["gitops.repository_created", "gitops.repository_deleted"]
    problems.assert_none()
