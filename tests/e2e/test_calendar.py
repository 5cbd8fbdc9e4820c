"""The release calendar in Chromium: a team member drags a free slot in the week view and books it, the
environment's owner opens the booking from the calendar and approves it, and it shows as approved."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from django.utils import timezone

from apps.environments.services import environment_grant
from apps.scheduling.models import Booking
from tests.e2e.conftest import PASSWORD, expect
from tests.e2e.test_deployments import snap
from tests.factories import make_environment, make_team, make_user

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def drag(page: Page, day: str, start: str, end: str) -> None:
    """Press at `start` and release at `end` (slot lanes such as "10:00:00") in the column of `day`."""
    column = page.locator(f"td.fc-timegrid-col[data-date='{day}']").bounding_box()
    first = page.locator(f"td.fc-timegrid-slot-lane[data-time='{start}']").bounding_box()
    last = page.locator(f"td.fc-timegrid-slot-lane[data-time='{end}']").bounding_box()
    x = column["x"] + column["width"] / 2
    page.mouse.move(x, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(x, last["y"] + last["height"] / 2, steps=8)
    page.mouse.up()


def test_a_member_books_a_slot_by_dragging_and_the_owner_approves_it(
    page: Page, live_server, sign_in, e2e_user, problems
):
    owner = make_user("olga", first_name="Olga", last_name="Owner")
    owner.set_password(PASSWORD)
    owner.save()
    platform = make_team("platform", members=(owner,))
    prod = make_environment(platform, "prod", name="Production", requires_booking=True)
    environment_grant(actor=None, environment=prod, team=make_team("web", members=(e2e_user,)), action="book")
    day = (timezone.localdate() + timedelta(days=1)).isoformat()

    sign_in()
    page.goto(f"{live_server.url}/calendar/?date={day}&environment=prod")
    expect(page.locator(".fc-timegrid")).to_be_visible()
    drag(page, day, "10:00:00", "10:30:00")
    expect(page.locator("#id_starts_at")).to_have_value(f"{day}T10:00")
    expect(page.locator("#id_ends_at")).to_have_value(f"{day}T11:00")
    page.locator("#id_title").fill("payments-api 1.5.0")
    snap(page, "calendar-drag")
    page.get_by_role("button", name="Book", exact=True).click()
    booking = Booking.objects.get()
    assert booking.status == "requested"
    assert (booking.starts_at.hour, booking.ends_at.hour) == (10, 11)  # the browser runs in UTC here
    expect(page.get_by_test_id("booking-status").first).to_have_text("requested")

    page.context.clear_cookies()
    sign_in(owner)
    page.goto(f"{live_server.url}/calendar/?date={day}")
    event = page.locator(".fc-event", has_text="payments-api 1.5.0")
    expect(event).to_be_visible()
    event.click()
    modal = page.get_by_test_id("booking-modal")
    expect(modal).to_be_visible()
    expect(modal.get_by_test_id("booking-status")).to_have_text("requested")
    snap(page, "calendar-booking-modal")
    modal.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("booking-status").first).to_have_text("approved")
    booking.refresh_from_db()
    assert (booking.status, booking.decided_by) == ("approved", owner)
    page.goto(f"{live_server.url}/calendar/?date={day}")
    page.locator(".fc-event", has_text="payments-api 1.5.0").click()
    expect(page.get_by_test_id("booking-modal").get_by_test_id("booking-status")).to_have_text("approved")
    snap(page, "calendar-approved")
    problems.assert_none()
