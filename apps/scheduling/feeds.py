"""iCalendar feeds of the release calendar, made with the `icalendar` library: bookings as events (with their
status) and freeze windows as events with their RRULE and EXDATEs in the window's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.utils import timezone
from icalendar import Calendar, Event, vRecur

from .models import Booking, BookingStatus, FreezeWindow

PAST_DAYS = 30  # how far back a feed reaches
ICAL_STATUS = {
    BookingStatus.REQUESTED: "TENTATIVE",
    BookingStatus.APPROVED: "CONFIRMED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.DECLINED: "CANCELLED",
    BookingStatus.CANCELLED: "CANCELLED",
}


def _booking_event(booking: Booking, domain: str) -> Event:
    event = Event()
    event.add("uid", f"booking-{booking.pk}@{domain}")
    event.add("dtstamp", booking.updated_at)
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    event.add("summary", f"[{booking.environment.slug}] {booking.title}")
    event.add("status", ICAL_STATUS[booking.status])
    event.add("categories", ["booking", booking.environment.slug])
    who = booking.requested_by.username if booking.requested_by else "the system"
    details = [f"Booked by {booking.team.name} ({who}), {booking.get_status_display()}."]
    if booking.notes:
        details.append(booking.notes)
    event.add("description", "\n".join(details))
    return event


def _freeze_event(window: FreezeWindow, environments: str, domain: str, now: datetime) -> Event:
    event = Event()
    event.add("uid", f"freeze-{window.pk}@{domain}")
    event.add("dtstamp", window.updated_at)
    zone = ZoneInfo(window.timezone)
    event.add("dtstart", window.starts_at.astimezone(zone))
    if window.ends_at is not None:
        event.add("dtend", window.ends_at.astimezone(zone))
    else:  # a lock: shown until a day from now, and moved on each refresh of the feed
        event.add("dtend", max(now, window.starts_at) + timedelta(days=1))
    event.add("summary", f"Freeze ({environments}): {window.title}")
    event.add("description", window.reason)
    event.add("categories", ["freeze"])
    event.add("transp", "OPAQUE")
    if window.rrule:
        rrulestr(window.rrule)  # checked when saved; a bad one stops here rather than in someone's calendar app
        event.add("rrule", vRecur.from_ical(window.rrule))
        for value in window.exdates:
            event.add("exdate", datetime.fromisoformat(value).replace(tzinfo=zone))
    return event


def feed(*, title: str, bookings, freezes, domain: str) -> bytes:
    """The iCalendar document of these bookings and freeze windows."""
    now = timezone.now()
    calendar = Calendar()
    calendar.add("prodid", "-//ReleaseHub//Release calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", title)
    calendar.add("method", "PUBLISH")
    for booking in bookings:
        calendar.add_component(_booking_event(booking, domain))
    for window in freezes:
        environments = "all" if window.all_environments else ", ".join(e.slug for e in window.environments.all())
        calendar.add_component(_freeze_event(window, environments, domain, now))
    return calendar.to_ical()
