"""The iCal feeds: they parse with `icalendar`, hold only what the token's owner may view, and a regenerated
token replaces the old one."""

from __future__ import annotations

import re

from django.test import Client
from icalendar import Calendar

from apps.environments.services import environment_grant
from apps.scheduling.services import booking_request, feed_token_regenerate, freeze_create
from tests.factories import make_environment, make_team, make_user

from .test_bookings import at


def test_feeds_parse_and_show_only_what_the_user_may_view(db):
    owner, outsider = make_user("olga"), make_user("otto")
    platform = make_team("platform", members=(owner,))
    prod = make_environment(platform, "prod", name="Production", requires_booking=True)
    secret = make_environment(make_team("secret-ops"), "vault", name="Vault")
    environment_grant(actor=None, environment=prod, team=make_team("viewers", members=(outsider,)), action="view")
    booking_request(actor=owner, environment=prod, starts_at=at(2), ends_at=at(3), title="payments 1.5.0")
    booking_request(actor=None, environment=secret, starts_at=at(2), ends_at=at(3), title="hidden")
    freeze_create(
        actor=None,
        title="Friday evenings",
        reason="Peak.",
        environments=[prod],
        starts_at=at(24),
        ends_at=at(28),
        rrule="FREQ=WEEKLY;COUNT=4",
        exdates=[],
        timezone_name="Europe/Berlin",
    )
    client = Client()
    assert client.get("/calendar/all.ics").status_code == 401
    raw = feed_token_regenerate(actor=outsider)
    response = client.get(f"/calendar/all.ics?token={raw}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"[prod] payments 1.5.0", "Freeze (prod): Friday evenings"}
    assert str(events["[prod] payments 1.5.0"]["status"]) == "CONFIRMED"  # the owner's booking: approved
    freeze = events["Freeze (prod): Friday evenings"]
    assert freeze["rrule"]["FREQ"] == ["WEEKLY"]
    assert str(freeze["dtstart"].dt.tzinfo) == "Europe/Berlin"
    assert client.get(f"/calendar/vault.ics?token={raw}").status_code == 404  # not visible to otto
    assert client.get(f"/calendar/prod.ics?token={raw}").status_code == 200
    newer = feed_token_regenerate(actor=outsider)
    assert client.get(f"/calendar/all.ics?token={raw}").status_code == 401  # the old link stopped working
    assert client.get(f"/calendar/all.ics?token={newer}").status_code == 200


def test_the_calendar_page_makes_a_feed_link_and_shows_it_once(db):
    user = make_user("olga")
    client = Client()
    client.force_login(user)
    page = client.post("/calendar/feed-token/", follow=True).content.decode()
    link = re.search(r"(http://testserver/calendar/all\.ics\?token=[\w-]+)", page).group(1)
    assert Client().get(link.removeprefix("http://testserver")).status_code == 200
    assert link not in client.get("/calendar/").content.decode()
