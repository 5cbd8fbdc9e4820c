"""Browser journeys through the environment and application pages: Chromium driven by Playwright."""

from __future__ import annotations

import hashlib
import io
import re
from typing import TYPE_CHECKING

import pytest
from django.core.management import call_command

from apps.accounts.models import User
from apps.accounts.services import team_add_member, team_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Application, Artifact
from apps.catalog.services import application_create, artifact_register
from apps.environments.models import MASK, Environment, Variable
from tests.e2e.conftest import PASSWORD, expect, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

SECRET = "pg-Sup3r-s3cret-e2e"


@pytest.fixture
def manager(django_user_model):
    """A staff member (may create environments) who signs in with the known password."""
    user = django_user_model(username="mara", first_name="Mara", last_name="Jensen", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def navbar(page: Page):
    return page.get_by_role("navigation", name="Main navigation")


def test_a_manager_creates_an_environment_with_a_target_and_a_secret_that_stays_masked(
    page: Page, live_server, sign_in, manager, problems
):
    team_create(actor=None, name="Platform", slug="platform")
    sign_in(manager)
    navbar(page).get_by_role("link", name="Environments", exact=True).click()
    expect(page.locator("h1")).to_have_text("Environments")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No environments visible to you yet")
    shot(page, "environments-empty")

    # The environment.
    page.locator(".rh-page-header").get_by_role("link", name="New environment").click()
    expect(page.locator("h1")).to_have_text("New environment")
    page.get_by_label("Slug").fill("payments-prod")
    page.get_by_label("Name").fill("Payments production")
    page.get_by_label("Tier").select_option("production")
    page.get_by_label("Owner team").select_option("platform")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Labels").fill("region=eu-central\ncost-centre=42")
    page.get_by_label("Protected").check()
    shot(page, "environment-new-form")
    page.get_by_role("button", name="Create environment").click()
    expect(page).to_have_url(f"{live_server.url}/environments/payments-prod/")
    expect(page.get_by_role("alert").filter(has_text="created")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("Payments production")
    expect(page.get_by_test_id("tier-badge")).to_have_text("Production")
    active = navbar(page).locator('[aria-current="page"]')
    expect(active).to_have_text("Environments")  # the section stays marked on the detail page

    # A target.
    page.get_by_role("link", name="Add target").click()
    page.get_by_label("Name").fill("pay-blue-1")
    page.get_by_label("Address").fill("10.4.0.11")
    page.get_by_label("Slot").select_option("blue")
    page.get_by_label("Attributes").fill("port=8443")
    page.get_by_role("button", name="Add target").click()
    expect(page.get_by_role("alert").filter(has_text="Target “pay-blue-1” added.")).to_be_visible()
    targets = page.get_by_test_id("target-table")
    expect(targets.locator("tbody tr")).to_have_count(1)
    expect(targets).to_contain_text("10.4.0.11")
    expect(targets.locator(".rh-slot-blue")).to_have_text("Blue")

    # A secret variable: the page shows the mask, never the value.
    page.get_by_role("link", name="Add variable").click()
    expect(page.locator("h1")).to_have_text("Add a variable to Payments production")
    page.get_by_label("Name").fill("DATABASE_PASSWORD")
    page.get_by_label("Value").fill(SECRET)
    page.get_by_label("Secret").check()
    page.get_by_role("button", name="Add variable").click()
    expect(page.get_by_role("alert").filter(has_text="Variable DATABASE_PASSWORD added.")).to_be_visible()
    row = page.get_by_test_id("variable-table").locator("tbody tr", has_text="DATABASE_PASSWORD")
    expect(row.get_by_test_id("secret-mask")).to_have_text(MASK)
    assert SECRET not in page.content()
    shot(page, "environment-detail-with-secret")

    variable = Variable.objects.get(name="DATABASE_PASSWORD")
    assert variable.secret
    assert SECRET not in variable.value
    # Editing the secret never pre-fills it.
    row.get_by_role("link", name="Edit DATABASE_PASSWORD").click()
    expect(page.get_by_label("New value")).to_have_value("")
    assert SECRET not in page.content()
    shot(page, "variable-edit-secret")
    page.get_by_label("New value").fill(SECRET + "-rotated")
    page.get_by_role("button", name="Save variable").click()
    expect(page.get_by_role("alert").filter(has_text="Variable DATABASE_PASSWORD saved.")).to_be_visible()
    assert SECRET not in page.content()

    # History and access tabs: who did it, through the browser; the secret nowhere.
    page.get_by_role("link", name="History").click()
    history = page.get_by_test_id("history-table")
    expect(history.locator("tbody tr")).to_have_count(4)
    expect(history.locator("tbody tr").first).to_contain_text("changed (secret)")
    expect(history.locator(".rh-channel").first).to_have_text("ui")
    expect(history).to_contain_text("Mara Jensen")
    assert SECRET not in page.content()
    shot(page, "environment-history")
    page.get_by_role("link", name="Access").click()
    access = page.get_by_test_id("access-table")
    expect(access.locator("tbody tr", has_text="Platform")).to_be_visible()
    assert SECRET not in page.content()
    shot(page, "environment-access")

    # Everything went through the services: each step is in the audit trail, from the browser.
    verbs = set(AuditEvent.objects.filter(actor=manager, channel="ui").values_list("verb", flat=True))
    assert {"environment.created", "target.created", "variable.created"} <= verbs
    assert Environment.objects.get(slug="payments-prod").labels == {"region": "eu-central", "cost-centre": "42"}
    problems.assert_none()


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_browse_applications_search_filter_by_branch_and_open_an_artifact(
    page: Page, live_server, sign_in, e2e_user, problems
):
    team = team_create(actor=None, name="Payments", slug="payments")
    team_add_member(actor=None, team=team, user=e2e_user)
    for slug, name in [("payments-api", "Payments API"), ("ledger-worker", "Ledger worker"), ("web", "Web shop")]:
        application_create(actor=None, slug=slug, name=name, owner_team=team)
    builds = [("1.3.0", "main"), ("1.4.0", "main"), ("1.5.0-rc.1", "release/1.5"), ("1.4.1", "main")]
    for version, branch in builds:
        artifact_register(
            actor=e2e_user,
            application="payments-api",
            version=version,
            digest=_digest(version),
            uri=f"https://artifacts.example.com/payments-api/{version}.tar.gz",
            commit=hashlib.sha1(version.encode()).hexdigest(),  # noqa: S324 - a made-up commit id
            branch=branch,
            build_url=f"https://ci.example.com/payments-api/{version}",
        )

    sign_in()
    navbar(page).get_by_role("link", name="Applications", exact=True).click()
    expect(page.locator("h1")).to_have_text("Applications")
    table = page.get_by_test_id("application-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    shot(page, "applications-list")

    # Search: htmx swaps the table as one types, and the URL follows.
    page.get_by_label("Search", exact=True).fill("pay")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/applications/\?search=pay"))
    row = table.locator("tbody tr").first
    expect(row).to_contain_text("Payments API")
    expect(row).to_contain_text("1.5.0-rc.1")  # the latest version
    shot(page, "applications-search")
    row.get_by_role("link", name="Payments API").click()

    # Application detail: newest version first; then only the release branch.
    expect(page.locator("h1")).to_have_text("Payments API")
    artifacts = page.get_by_test_id("artifact-table")
    expect(artifacts.locator("tbody tr")).to_have_count(4)
    expect(artifacts.locator("tbody tr").first).to_contain_text("1.5.0-rc.1")
    expect(navbar(page).locator('[aria-current="page"]')).to_have_text("Applications")
    shot(page, "application-detail")
    page.get_by_label("Branch").select_option("main")
    expect(artifacts.locator("tbody tr")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"\?branch=main$"))
    expect(artifacts.locator("tbody tr").first).to_contain_text("1.4.1")
    shot(page, "application-detail-branch")

    # Artifact detail: its provenance and a link to its audit events.
    artifacts.get_by_role("link", name="1.4.0").click()
    expect(page.locator("h1")).to_contain_text("1.4.0")
    provenance = page.get_by_test_id("provenance")
    artifact = Artifact.objects.get(version="1.4.0")
    expect(page.get_by_test_id("digest")).to_have_text(artifact.digest)
    expect(provenance).to_contain_text(artifact.uri)
    expect(provenance).to_contain_text(artifact.commit)
    expect(provenance.get_by_role("link", name=re.compile("ci.example.com"))).to_have_attribute(
        "href", "https://ci.example.com/payments-api/1.4.0"
    )
    shot(page, "artifact-detail")
    page.get_by_test_id("audit-link").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.get_by_test_id("audit-table").locator("tbody tr", has_text="artifact.registered")).to_have_count(1)

    # Back works: the filtered application page comes back whole (htmx history restore).
    page.go_back()
    page.go_back()
    expect(page.locator("h1")).to_have_text("Payments API")
    expect(page.get_by_test_id("artifact-table").locator("tbody tr")).to_have_count(3)
    problems.assert_none()


def test_pages_work_without_javascript(browser, live_server, manager):
    """The filter forms are plain GET forms underneath htmx: they work with JavaScript off."""
    team = team_create(actor=None, name="Payments", slug="payments")
    application_create(actor=None, slug="payments-api", name="Payments API", owner_team=team)
    application_create(actor=None, slug="web", name="Web shop", owner_team=team)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(manager.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{live_server.url}/applications/")
        page.get_by_label("Search", exact=True).fill("web")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"search=web"))
        expect(page.get_by_test_id("application-table").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_test_id("application-table")).to_contain_text("Web shop")
    finally:
        context.close()


def test_every_page_with_the_demo_data(page: Page, live_server, problems):
    """The demo data through the eyes of an administrator and of alice (payments, no manage on environments):
    every page renders, no secret reaches the browser. Saves a screenshot of each page."""
    call_command("seed_demo", stdout=io.StringIO())
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    alice = User.objects.get(username="alice")
    alice.set_password(PASSWORD)
    alice.save()
    secrets = [v.value for v in Variable.objects.filter(secret=True)] + ["demo-secret"]
    prod = Environment.objects.get(slug="prod")
    variable = prod.variables.filter(secret=True).first()
    target = prod.targets.order_by("name").first()
    app = Application.objects.get(slug="payments-api")
    pages = {
        "demo-environments": "/environments/",
        "demo-environments-filtered": "/environments/?tier=production",
        "demo-environment-detail": "/environments/prod/",
        "demo-environment-history": "/environments/prod/history/",
        "demo-environment-access": "/environments/prod/access/",
        "demo-environment-new": "/environments/new/",
        "demo-environment-edit": "/environments/prod/edit/",
        "demo-target-new": "/environments/prod/targets/new/",
        "demo-target-edit": f"/environments/prod/targets/{target.pk}/edit/",
        "demo-variable-new": "/environments/prod/variables/new/",
        "demo-variable-edit-secret": f"/environments/prod/variables/{variable.pk}/edit/",
        "demo-applications": "/applications/",
        "demo-applications-search": "/applications/?search=ledger",
        "demo-applications-empty-search": "/applications/?search=nothing",
        "demo-application-detail": f"/applications/{app.slug}/",
        "demo-application-branch": f"/applications/{app.slug}/?branch=release/1.5",
        "demo-application-history": f"/applications/{app.slug}/history/",
        "demo-application-access": f"/applications/{app.slug}/access/",
        "demo-application-new": "/applications/new/",
        "demo-application-edit": f"/applications/{app.slug}/edit/",
        "demo-artifact-detail": f"/applications/{app.slug}/artifacts/1.4.2/",
    }
    viewer_pages = {
        "demo-viewer-environment-detail": "/environments/prod/",
        "demo-viewer-environment-access": "/environments/prod/access/",
        "demo-viewer-application-detail": f"/applications/{app.slug}/",
        "demo-viewer-application-access": f"/applications/{app.slug}/access/",
    }
    for who, visits in ((admin, pages), (alice, viewer_pages)):
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(who.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1")).to_have_text("Dashboard")
        for name, path in visits.items():
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None, path
            assert response.status == 200, path
            content = page.content()
            for secret in secrets:
                assert secret not in content, path
            shot(page, name)
    problems.assert_none()
