"""Bookings of deployment slots: the API and the services, permissions, limits, and double-booking made
impossible (the exclusion constraint on PostgreSQL, the serialized check on SQLite)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.environments.services import environment_grant, environment_update
from apps.notifications.models import Delivery
from apps.scheduling.models import Booking
from apps.scheduling.services import booking_approve, booking_cancel, booking_decline, booking_request
from tests.conftest import on_postgres
from tests.factories import bearer_client, make_environment, make_team, make_user


def at(hours: float):
    """A time `hours` from now, to the minute."""
    return (timezone.now() + timedelta(hours=hours)).replace(second=0, microsecond=0)


@pytest.fixture
def cal(db):
    """prod (owned by platform, requires booking) and dev (no booking needed); the web team may book both."""
    owner, member, other = make_user("olga"), make_user("walt"), make_user("xena")
    platform = make_team("platform", members=(owner,))
    web = make_team("web", members=(member,))
    prod = make_environment(platform, "prod", name="Production", requires_booking=True)
    dev = make_environment(platform, "dev", name="Development")
    for environment in (prod, dev):
        environment_grant(actor=None, environment=environment, team=web, action="book")
    return {
        "owner": owner,
        "member": member,
        "other": other,
        "prod": prod,
        "dev": dev,
        "web": web,
        "platform": platform,
    }


def book(cal, env="prod", start=2, hours=1, who="member", **kwargs):
    return booking_request(
        actor=cal[who], environment=cal[env], starts_at=at(start), ends_at=at(start + hours), title="Ship it", **kwargs
    )


def test_a_booking_waits_for_the_owners_where_the_environment_requires_booking(cal):
    booking = book(cal)
    assert (booking.status, booking.team, booking.requested_by) == ("requested", cal["web"], cal["member"])
    with pytest.raises(PermissionDenied):
        booking_approve(actor=cal["member"], booking=booking)
    booking = booking_approve(actor=cal["owner"], booking=booking)
    assert (booking.status, booking.decided_by) == ("approved", cal["owner"])
    assert book(cal, env="dev").status == "approved"  # no booking required: approved at once
    assert book(cal, start=10, who="owner").status == "approved"  # an owner's own booking
    verbs = list(AuditEvent.objects.filter(object_type="scheduling.booking").values_list("verb", flat=True))
    assert verbs.count("booking.requested") == 3
    told = Delivery.objects.filter(event="booking.changed", recipient=cal["member"].email)
    assert told.exists()


def test_overlaps_are_refused_naming_the_booking_and_adjacent_slots_are_fine(cal):
    first = book(cal, start=2, hours=2)
    with pytest.raises(Conflict) as caught:
        book(cal, start=3, hours=2)
    assert f"booking #{first.pk}" in caught.value.detail
    assert caught.value.extra["booking"] == first.pk
    assert book(cal, start=4, hours=1).starts_at == first.ends_at  # starts when the first ends
    assert book(cal, start=1, hours=1).ends_at == first.starts_at  # ends when the first starts
    assert book(cal, env="dev", start=2, hours=2)  # another environment
    booking_cancel(actor=cal["member"], booking=first)
    assert book(cal, start=2, hours=2).status == "requested"  # a cancelled booking frees its slot


@pytest.mark.parametrize(
    ("start", "hours", "field", "message"),
    [
        (2, 0.1, "ends_at", "15 minutes or more"),
        (2, 9, "ends_at", "480 minutes or less"),
        (-1, 1, "starts_at", "in the past"),
        (24 * 91, 1, "starts_at", "90 days ahead"),
    ],
)
def test_slot_limits(cal, start, hours, field, message):
    with pytest.raises(ValidationFailed) as caught:
        book(cal, start=start, hours=hours)
    assert message in caught.value.fields[field][0]


def test_limits_are_per_environment(cal):
    environment_update(actor=None, environment=cal["prod"], booking_max_minutes=600, booking_horizon_days=400)
    cal["prod"].refresh_from_db()
    assert book(cal, start=24 * 300, hours=10).status == "requested"


def test_who_may_book_decide_and_cancel(cal):
    with pytest.raises(NotFound):  # xena sees neither environment: it does not exist for her
        book(cal, who="other")
    booking = book(cal)
    with pytest.raises(ValidationFailed):
        booking_decline(actor=cal["owner"], booking=booking, reason="  ")
    booking = booking_decline(actor=cal["owner"], booking=booking, reason="Freeze week.")
    assert (booking.status, booking.reason) == ("declined", "Freeze week.")
    booking = book(cal)
    environment_grant(
        actor=None, environment=cal["prod"], team=make_team("ops", members=(cal["other"],)), action="view"
    )
    with pytest.raises(PermissionDenied):
        booking_cancel(actor=cal["other"], booking=booking)
    assert booking_cancel(actor=cal["owner"], booking=booking, reason="Moved").status == "cancelled"


def test_bookings_api(cal):
    client = bearer_client(cal["member"], scopes=("read", "calendar:write"))
    body = {"environment": "prod", "starts_at": at(2).isoformat(), "ends_at": at(3).isoformat(), "title": "1.5.0"}
    response = client.post("/api/v1/bookings/", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["status"], created["team"], created["requested_by"]) == ("requested", "web", "walt")
    again = client.post("/api/v1/bookings/", {**body, "title": "again"}, format="json")
    assert again.status_code == 409
    assert again.json()["booking"] == created["id"]
    assert f"booking #{created['id']}" in again.json()["detail"]
    bad = client.post("/api/v1/bookings/", {**body, "ends_at": body["starts_at"]}, format="json")
    assert bad.status_code == 400
    assert "ends_at" in bad.json()["fields"]
    assert client.post(f"/api/v1/bookings/{created['id']}/approve/").status_code == 403
    owner = bearer_client(cal["owner"], scopes=("read", "calendar:write"))
    approved = owner.post(f"/api/v1/bookings/{created['id']}/approve/")
    assert approved.json()["status"] == "approved"
    assert owner.post(f"/api/v1/bookings/{created['id']}/approve/").status_code == 409
    listed = client.get("/api/v1/bookings/", {"environment": "prod", "start": at(2.5).isoformat()}).json()
    assert [b["id"] for b in listed["results"]] == [created["id"]]
    assert client.get("/api/v1/bookings/", {"end": at(1).isoformat()}).json()["results"] == []
    read_only = bearer_client(cal["member"], scopes=("read",))
    assert read_only.post("/api/v1/bookings/", {**body, "title": "x"}, format="json").status_code == 403


def test_the_list_and_the_page_run_a_constant_number_of_queries(cal):
    from django.test.utils import CaptureQueriesContext

    client = bearer_client(cal["member"], scopes=("read",))
    page = Client()
    page.force_login(cal["member"])

    def queries(path, through) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert through.get(path).status_code == 200
        return len(captured)

    book(cal, env="dev", start=2, hours=1)
    queries("/api/v1/bookings/", client)  # the token's first use records itself once
    few = queries("/api/v1/bookings/", client), queries("/calendar/", page)
    for i in range(1, 12):
        book(cal, env="dev" if i % 2 else "prod", start=2 + i, hours=1)
    assert (queries("/api/v1/bookings/", client), queries("/calendar/", page)) == few


def test_calendar_page_books_approves_and_cancels(cal):
    member, owner = Client(), Client()
    member.force_login(cal["member"])
    owner.force_login(cal["owner"])
    start, end = at(2), at(3)
    form = {"environment": "prod", "title": "payments 1.5.0", "starts_at": start.strftime("%Y-%m-%dT%H:%M")}
    response = member.post("/calendar/bookings/new/", {**form, "ends_at": end.strftime("%Y-%m-%dT%H:%M")})
    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/calendar/?booking={booking.pk}"
    page = member.get("/calendar/").content.decode()
    assert "payments 1.5.0" in page
    assert f"/calendar/bookings/{booking.pk}/approve/" not in page  # walt may not decide
    assert f"/calendar/bookings/{booking.pk}/cancel/" in page
    refused = member.post("/calendar/bookings/new/", {**form, "ends_at": end.strftime("%Y-%m-%dT%H:%M")})
    assert refused.status_code == 400
    assert f"booking #{booking.pk}" in refused.content.decode()
    assert f"/calendar/bookings/{booking.pk}/approve/" in owner.get("/calendar/").content.decode()
    owner.post(f"/calendar/bookings/{booking.pk}/approve/")
    booking.refresh_from_db()
    assert booking.status == "approved"
    member.post(f"/calendar/bookings/{booking.pk}/cancel/")
    booking.refresh_from_db()
    assert booking.status == "cancelled"


# --- PostgreSQL: the database itself refuses double bookings -------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres(), reason="the exclusion constraint is PostgreSQL's")
def test_the_constraint_refuses_an_overlap_inserted_by_raw_sql(cal):
    first = book(cal, start=2, hours=2)
    sql = (
        "INSERT INTO scheduling_booking (environment_id, starts_at, ends_at, team_id, requested_by_id, title, notes,"
        " status, reason, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'raw', '', %s, '', now(), now())"
    )
    values = [cal["prod"].pk, at(3), at(5), cal["web"].pk, cal["member"].pk]
    with pytest.raises(IntegrityError, match="booking_no_overlap"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*values, "approved"])
    with transaction.atomic(), connection.cursor() as cursor:  # adjacent, or not active: allowed
        cursor.execute(sql, [cal["prod"].pk, first.ends_at, at(5), *values[3:], "approved"])
        cursor.execute(sql, [*values, "declined"])


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres(), reason="concurrency of PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_requests_for_overlapping_slots_make_one_booking(live_server):
    walt = make_user("walt")
    web = make_team("web", members=(walt,))
    prod = make_environment(make_team("platform"), "prod")
    environment_grant(actor=None, environment=prod, team=web, action="book")
    _, raw = token_create(user=walt, name="ci", scopes=["calendar:write", "read"])

    def post(i: int):
        body = {
            "environment": "prod",
            "starts_at": at(2 + i * 0.05).isoformat(),  # each overlaps every other
            "ends_at": at(4).isoformat(),
            "title": f"slot {i}",
        }
        response = requests.post(
            f"{live_server.url}/api/v1/bookings/", json=body, headers={"Authorization": f"Bearer {raw}"}, timeout=60
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(post, range(20)))
    assert Counter(status for status, _ in results) == {201: 1, 409: 19}, results[:3]
    winner = next(body for status, body in results if status == 201)
    assert all(body["booking"] == winner["id"] for status, body in results if status == 409)
    assert Booking.objects.count() == 1
