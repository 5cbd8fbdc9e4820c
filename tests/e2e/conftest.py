"""Browser fixtures: Debian's Chromium driven by Playwright (sync API) against `live_server`.

Playwright's own browser download does not work here, so the system Chromium is launched
through `executable_path`. Without Chromium or Playwright the tests skip (and fail in CI,
where RELEASEHUB_REQUIRE_ALL=1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.conftest import require

# Playwright's sync API runs an event loop in the test thread; Django's async-safety check
# would then refuse every ORM call made by the test itself.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # without Playwright the `browser` fixture skips (or fails in CI) every test
    expect = sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 900}
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct-horse-battery"


def pytest_collection_modifyitems(config, items) -> None:
    """Every test in this folder is a browser journey."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require(sync_playwright is not None, "playwright (Python) is not installed")
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class BrowserProblems:
    """Console errors, uncaught page errors and failed same-origin requests seen by a page."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    # URLs a journey loads on purpose with an error status (Chromium logs those as console errors).
    expected_errors: set[str] = field(default_factory=set)

    def expect_error_status(self, url: str) -> None:
        self.expected_errors.add(url)

    def watch(self, page: Page) -> BrowserProblems:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)
        return self

    def _on_console(self, message) -> None:
        url = message.location.get("url", "")
        if message.type != "error":
            return
        if url in self.expected_errors and message.text.startswith("Failed to load resource"):
            return
        self.console_errors.append(f"{message.text} ({url})")

    def _same_origin_asset(self, url: str, resource_type: str) -> bool:
        same_origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" == self.origin
        asset = resource_type in {"stylesheet", "script", "font", "image"} or urlsplit(url).path.startswith("/static/")
        return same_origin and asset

    def _on_response(self, response) -> None:
        if response.status >= 400 and self._same_origin_asset(response.url, response.request.resource_type):
            self.failed_requests.append(f"{response.status} {response.url}")

    def _on_request_failed(self, request) -> None:
        # ERR_ABORTED is the browser cancelling a load because the page navigated away, not a
        # server fault; a missing file shows up in _on_response with its status.
        if request.failure == "net::ERR_ABORTED":
            return
        if self._same_origin_asset(request.url, request.resource_type):
            self.failed_requests.append(f"{request.failure} {request.url}")

    def assert_none(self) -> None:
        assert self.console_errors == [], "browser console errors"
        assert self.failed_requests == [], "failed static requests"


@pytest.fixture
def problems(page: Page, live_server) -> BrowserProblems:
    """Collects what went wrong in the browser; call `.assert_none()` at the end of a journey."""
    return BrowserProblems(origin=live_server.url).watch(page)


@pytest.fixture
def e2e_user(django_user_model):
    """A user with a known password, created in the test database the live server reads."""
    user = django_user_model(username="nora", email="nora@example.com", first_name="Nora", last_name="Berg")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def sign_in(page: Page, live_server, e2e_user):
    """sign_in() signs `e2e_user` in through the real login form and lands on the dashboard.

    sign_in(screenshot="name") also saves the empty login form as var/screenshots/name.png.
    """

    def do(user=None, password: str = PASSWORD, screenshot: str | None = None) -> None:
        user = user or e2e_user
        page.goto(f"{live_server.url}/login/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        if screenshot:
            shot(page, screenshot)
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{live_server.url}/")
        expect(page.locator("h1")).to_have_text("Dashboard")

    return do
