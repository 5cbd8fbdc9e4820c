"""Browser journeys through the real UI: Chromium driven by Playwright against `live_server`."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from apps.accounts.models import ApiToken
from tests.e2e.conftest import expect, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

# (navbar label, path, h1) for every item of the main navigation, in navbar order.
NAVIGATION = [
    ("Dashboard", "/", "Dashboard"),
    ("Releases", "/releases/", "Releases"),
    ("Deployments", "/deployments/", "Deployments"),
    ("Approvals", "/approvals/", "Approvals"),
    ("Calendar", "/calendar/", "Calendar"),
    ("Environments", "/environments/", "Environments"),
    ("Policies", "/policies/", "Policies"),
    ("Inventory", "/inventory/", "Inventory"),
    ("Applications", "/applications/", "Applications"),
    ("Audit", "/audit/", "Audit log"),
]


def navbar(page: Page):
    return page.get_by_role("navigation", name="Main navigation")


def open_user_menu_item(page: Page, item: str) -> None:
    page.get_by_test_id("user-menu").click()
    entry = page.get_by_role("menuitem", name=item).or_(page.locator(".dropdown-menu.show").get_by_text(item))
    expect(entry).to_be_visible()
    entry.click()


def icon_font_status(page: Page) -> str:
    """The load status of the vendored Bootstrap Icons font face, once the page's fonts settle."""
    return page.evaluate(
        """async () => {
            await document.fonts.ready;
            const face = [...document.fonts].find((f) => f.family.replace(/["']/g, "") === "bootstrap-icons");
            return face ? face.status : "missing";
        }"""
    )


def api_get(live_server, path: str, raw_token: str) -> int:
    """GET `path` from the live server with a real HTTP request authenticated by `raw_token`; returns the status."""
    url = f"{live_server.url}{path}"
    assert url.startswith("http://")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {raw_token}"})  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_sign_in_and_visit_every_navigation_item(page: Page, live_server, sign_in, problems):
    sign_in(screenshot="login")
    links = navbar(page).locator(".navbar-nav.me-auto .nav-link")
    expect(links).to_have_text([label for label, _, _ in NAVIGATION])
    for label, path, heading in NAVIGATION:
        navbar(page).get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(f"{live_server.url}{path}")
        expect(page.locator("h1")).to_have_text(heading)
        active = navbar(page).locator('[aria-current="page"]')
        expect(active).to_have_count(1)
        expect(active).to_have_text(label)
        expect(active).to_have_class(re.compile(r"\bactive\b"))
        expect(active.locator("i.bi")).to_be_visible()
        assert icon_font_status(page) == "loaded"
        shot(page, f"nav-{label.lower()}")
    problems.assert_none()


def test_new_user_creates_uses_and_revokes_api_tokens(page: Page, live_server, sign_in, problems, e2e_user):
    sign_in()
    dialogs = []

    def accept(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)

    # Account & API tokens, through the user menu.
    open_user_menu_item(page, "Account & API tokens")
    expect(page).to_have_url(f"{live_server.url}/account/")
    expect(page.locator("h1")).to_have_text("Nora Berg")
    expect(page.get_by_test_id("token-table")).to_contain_text("No tokens yet")
    shot(page, "account-empty")

    # A CI token: artifacts:write only (`read` is ticked by default, so untick it).
    page.get_by_label("Name").fill("GitHub Actions")
    page.locator('input[name="scopes"][value="read"]').uncheck()
    page.locator('input[name="scopes"][value="artifacts:write"]').check()
    page.get_by_role("button", name="Create token").click()
    new_token = page.get_by_test_id("new-token")
    expect(new_token).to_be_visible()
    value = new_token.get_by_label("New API token")
    expect(value).to_have_value(re.compile(r"^rh_"))
    ci_token = value.input_value()
    shot(page, "account-token-created")

    # Shown once: a reload does not show it again, the table lists it as active.
    page.reload()
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    table = page.get_by_test_id("token-table")
    ci_row = table.locator("tbody tr", has_text="GitHub Actions")
    expect(ci_row).to_have_count(1)
    expect(ci_row).to_contain_text("artifacts:write")
    expect(ci_row.locator(".badge", has_text="active")).to_be_visible()
    assert ApiToken.objects.filter(user=e2e_user).count() == 1
    shot(page, "account-token-listed")

    # The token works against the API, within its scopes.
    assert api_get(live_server, "/api/v1/audit-events/", ci_token) == 403  # lacks the `read` scope

    page.get_by_label("Name").fill("Reporting")
    page.locator('input[name="scopes"][value="read"]').check()
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token")).to_be_visible()
    read_token = page.get_by_label("New API token").input_value()
    assert read_token.startswith("rh_")
    assert read_token != ci_token
    assert api_get(live_server, "/api/v1/audit-events/", read_token) == 200

    # The audit log shows the creations, made through the UI.
    navbar(page).get_by_role("link", name="Audit", exact=True).click()
    expect(page.locator("h1")).to_have_text("Audit log")
    created = page.get_by_test_id("audit-table").locator("tbody tr", has_text="token.created")
    expect(created).to_have_count(2)
    expect(created.first.locator(".rh-channel")).to_have_text("ui")
    expect(created.first).to_contain_text("nora")
    shot(page, "audit-after-tokens")

    # Revoke the CI token (accepting the confirm dialog).
    open_user_menu_item(page, "Account & API tokens")
    ci_row = page.get_by_test_id("token-table").locator("tbody tr", has_text="GitHub Actions")
    ci_row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("alert").filter(has_text="revoked")).to_be_visible()
    assert dialogs == ["Revoke “GitHub Actions”? Clients using it stop working at once."]
    expect(ci_row.locator(".badge").last).to_have_text("revoked")
    expect(ci_row.get_by_role("button", name="Revoke")).to_have_count(0)
    reporting_row = page.get_by_test_id("token-table").locator("tbody tr", has_text="Reporting")
    expect(reporting_row.locator(".badge", has_text="active")).to_be_visible()
    # The table fits its card: no horizontal scrolling hides the Revoke buttons.
    assert page.get_by_test_id("token-table").evaluate(
        "table => table.parentElement.scrollWidth <= table.parentElement.clientWidth"
    )
    shot(page, "account-token-revoked")

    # A revoked token no longer authenticates.
    assert api_get(live_server, "/api/v1/audit-events/", ci_token) == 401
    problems.assert_none()


def test_revoke_needs_confirmation(page: Page, live_server, sign_in, make_token, e2e_user):
    make_token(e2e_user, name="Keep me")
    sign_in()
    dialogs = []

    def dismiss(dialog) -> None:
        dialogs.append((dialog.type, dialog.message))
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(f"{live_server.url}/account/")
    row = page.get_by_test_id("token-table").locator("tbody tr", has_text="Keep me")
    row.get_by_role("button", name="Revoke").click()
    assert dialogs == [("confirm", "Revoke “Keep me”? Clients using it stop working at once.")]
    page.reload()
    expect(row.locator(".badge", has_text="active")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert ApiToken.objects.get(name="Keep me").revoked_at is None


def test_sign_out_then_pages_need_sign_in(page: Page, live_server, sign_in, problems):
    sign_in()
    page.get_by_test_id("user-menu").click()
    menu = page.locator(".dropdown-menu.show")
    expect(menu).to_be_visible()
    expect(menu.get_by_text("Account & API tokens")).to_be_visible()
    shot(page, "user-menu")
    menu.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("user-menu")).to_have_count(0)

    page.goto(f"{live_server.url}/audit/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/audit/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "login-redirect")
    problems.assert_none()


def test_unknown_page_shows_custom_404(page: Page, live_server, sign_in, problems):
    missing = f"{live_server.url}/no-such-page/"
    problems.expect_error_status(missing)
    sign_in()
    response = page.goto(missing)
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.get_by_test_id("user-menu")).to_be_visible()
    page.get_by_role("link", name="Back to the dashboard").click()
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.goto(missing)
    expect(page.locator("h1")).to_have_text("Page not found")
    shot(page, "404")
    problems.assert_none()
