"""Freeze windows (one-off, recurring across DST, locks) and what they stop: bookings, and deployments starting,
unless someone who manages the environment overrides; environments that require a booked slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.deployments.engine import runner
from apps.deployments.services import deployment_create, deployment_override_freeze, template_create
from apps.environments.services import environment_grant
from apps.scheduling import freezes
from apps.scheduling.services import booking_request, environment_lock, environment_unlock, freeze_create
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)

from .test_bookings import at


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def world(db):
    owner, member = make_user("olga"), make_user("walt")
    platform = make_team("platform", members=(owner,))
    web = make_team("web", members=(member,))
    prod = make_environment(platform, "prod", name="Production", timezone="Europe/Berlin")
    make_target(prod, "web-1")
    for action in ("book", "deploy", "view"):
        environment_grant(actor=None, environment=prod, team=web, action=action)
    application = make_application(web, "shop")
    application_grant(actor=None, application=application, team=platform, action="view")
    release = make_release(application, [register(application, "1.0.0", by=member)])
    template = template_create(
        actor=None, slug="noop", name="Noop", steps=[{"name": "Say", "kind": "shell", "params": {"command": "true"}}]
    )
    return {"owner": owner, "member": member, "prod": prod, "release": release, "template": template}


def test_a_weekly_freeze_in_berlin_keeps_its_local_hours_across_the_march_dst_change(world):
    window = freeze_create(
        actor=None,
        title="Friday evenings",
        reason="Traffic peak.",
        environments=[world["prod"]],
        starts_at=utc(2027, 3, 19, 17),  # Friday 18:00 CET
        ends_at=utc(2027, 3, 19, 21),  # 22:00 CET
        rrule="FREQ=WEEKLY;BYDAY=FR",
        exdates=["2027-03-26T18:00:00"],
        timezone_name="Europe/Berlin",
    )
    found = list(freezes.occurrences(window, utc(2027, 3, 15), utc(2027, 4, 10)))
    assert found == [
        (utc(2027, 3, 19, 17), utc(2027, 3, 19, 21)),  # CET, UTC+1
        (utc(2027, 4, 2, 16), utc(2027, 4, 2, 20)),  # CEST, UTC+2: still 18:00-22:00 in Berlin
        (utc(2027, 4, 9, 16), utc(2027, 4, 9, 20)),
    ]  # 26 March is an exception (EXDATE)
    prod = world["prod"].pk
    assert freezes.frozen_at(prod, utc(2027, 4, 2, 16, 30)) is not None
    assert freezes.frozen_at(prod, utc(2027, 4, 2, 20, 30)) is None  # 22:30 in Berlin
    assert freezes.frozen_at(prod, utc(2027, 3, 19, 20, 30)) is not None  # 21:30 CET
    assert freezes.frozen_at(prod, utc(2027, 3, 26, 17, 30)) is None  # the exception
    assert freezes.frozen_at(prod, utc(2027, 4, 1, 17)) is None  # a Thursday


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"timezone_name": "Mars/Olympus"}, "timezone"),
        ({"ends_at": utc(2027, 1, 1)}, "ends_at"),
        ({"environments": []}, "environments"),
        ({"exdates": ["soon"]}, "exdates"),
    ],
)
def test_bad_freezes_are_refused_naming_the_field(world, changes, field):
    values = {
        "actor": None,
        "title": "x",
        "reason": "y",
        "environments": [world["prod"]],
        "starts_at": utc(2027, 1, 2),
        "ends_at": utc(2027, 1, 3),
        **changes,
    }
    with pytest.raises(ValidationFailed) as caught:
        freeze_create(**values)
    assert field in caught.value.fields


def test_a_booking_inside_a_freeze_is_refused_naming_it(world):
    window = freeze_create(
        actor=world["owner"],
        title="Black Friday",
        reason="Peak sales.",
        environments=[world["prod"]],
        starts_at=at(1),
        ends_at=at(30),
    )
    with pytest.raises(Conflict) as caught:
        booking_request(actor=world["member"], environment=world["prod"], starts_at=at(2), ends_at=at(3), title="x")
    assert "“Black Friday”" in caught.value.detail
    assert caught.value.extra["freeze"] == window.pk
    assert booking_request(
        actor=world["member"], environment=world["prod"], starts_at=at(31), ends_at=at(32), title="x"
    )


def test_only_managers_freeze_their_environments_and_only_administrators_all(world):
    values = {"title": "x", "reason": "y", "starts_at": at(1), "ends_at": at(2)}
    with pytest.raises(PermissionDenied):
        freeze_create(actor=world["member"], environments=[world["prod"]], **values)
    with pytest.raises(PermissionDenied):
        freeze_create(actor=world["owner"], all_environments=True, **values)
    assert freeze_create(actor=make_user("root", is_superuser=True), all_environments=True, **values).all_environments


def deploy(world):
    return deployment_create(
        actor=world["member"], release=world["release"], environment=world["prod"], template=world["template"]
    )


def test_a_locked_environment_holds_deployments_until_unlocked_or_overridden(world):
    with pytest.raises(ValidationFailed):
        environment_lock(actor=world["owner"], environment=world["prod"], reason=" ")
    environment_lock(actor=world["owner"], environment=world["prod"], reason="Incident 4711")
    deployment = deploy(world)
    deployment.refresh_from_db()
    assert deployment.status == "queued"
    assert "Frozen by “Locked by olga” until it is unlocked: Incident 4711" in deployment.status_reason
    runner.dispatch()
    deployment.refresh_from_db()
    assert deployment.status == "queued"
    with pytest.raises(PermissionDenied):
        deployment_override_freeze(actor=world["member"], deployment=deployment, reason="Hotfix")
    environment_unlock(actor=world["owner"], environment=world["prod"])
    runner.dispatch()
    deployment.refresh_from_db()
    assert deployment.status == "running"
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"environment.locked", "environment.unlocked"} <= verbs


def test_a_manager_overrides_a_freeze_with_a_reason(world):
    environment_lock(actor=world["owner"], environment=world["prod"], reason="Incident 4711")
    deployment = deploy(world)
    client = bearer_client(world["owner"], scopes=("read", "deployments:write"))
    response = client.post(f"/api/v1/deployments/{deployment.pk}/override-freeze/", {}, format="json")
    assert response.status_code == 400
    response = client.post(
        f"/api/v1/deployments/{deployment.pk}/override-freeze/", {"reason": "The fix for 4711"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "running"
    event = AuditEvent.objects.get(verb="deployment.freeze_overridden")
    assert event.details["reason"] == "The fix for 4711"


def test_an_environment_that_requires_booking_starts_deployments_inside_an_approved_booking(world):
    world["prod"].requires_booking = True
    world["prod"].save()
    deployment = deploy(world)
    deployment.refresh_from_db()
    assert deployment.status == "queued"
    assert "requires a booked slot" in deployment.status_reason
    now = timezone.now()
    booking_request(
        actor=world["owner"], environment=world["prod"], starts_at=now, ends_at=now + timedelta(hours=1), title="x"
    )
    runner.dispatch()
    deployment.refresh_from_db()
    assert deployment.status == "running"


def test_freezes_and_locks_api(world):
    owner = bearer_client(world["owner"], scopes=("read", "calendar:write"))
    body = {
        "environments": ["prod"],
        "starts_at": "2027-03-19T17:00:00Z",
        "ends_at": "2027-03-19T21:00:00Z",
        "rrule": "FREQ=WEEKLY;BYDAY=FR",
        "timezone": "Europe/Berlin",
        "reason": "Friday evenings",
    }
    response = owner.post("/api/v1/freezes/", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["environments"], created["title"]) == (["prod"], "Friday evenings")
    assert owner.post("/api/v1/freezes/", {**body, "environments": ["nope"]}, format="json").status_code == 400
    assert owner.post("/api/v1/freezes/", {**body, "environments": "all"}, format="json").status_code == 403
    member = bearer_client(world["member"], scopes=("read", "calendar:write"))
    assert [f["id"] for f in member.get("/api/v1/freezes/").json()["results"]] == [created["id"]]
    assert member.delete(f"/api/v1/freezes/{created['id']}/").status_code == 403
    assert owner.delete(f"/api/v1/freezes/{created['id']}/").status_code == 204
    assert owner.get("/api/v1/freezes/").json()["results"] == []
    locked = owner.post("/api/v1/environments/prod/lock/", {"reason": "Incident"}, format="json")
    assert locked.status_code == 201
    assert locked.json()["ends_at"] is None
    assert owner.post("/api/v1/environments/prod/lock/", {"reason": "again"}, format="json").status_code == 409
    assert owner.delete("/api/v1/environments/prod/lock/").status_code == 200
    assert owner.delete("/api/v1/environments/prod/lock/").status_code == 409


def test_pages_lock_and_unlock_show_the_freeze_and_let_a_manager_override_it(world):
    from django.test import Client

    owner, member = Client(), Client()
    owner.force_login(world["owner"])
    member.force_login(world["member"])
    assert "lock-form" not in member.get("/environments/prod/").content.decode()  # walt does not manage it
    response = owner.post("/calendar/environments/prod/lock/", {"reason": "Incident 4711"})
    assert response["Location"] == "/environments/prod/"
    page = owner.get("/environments/prod/").content.decode()
    assert 'data-testid="lock-banner"' in page
    assert "Incident 4711" in page
    calendar = member.get("/calendar/").content.decode()
    assert "Locked by olga" in calendar
    assert "until unlocked" in calendar
    deployment = deploy(world)
    assert "Frozen by" in member.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "override-freeze-form" not in member.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "override-freeze-form" in owner.get(f"/deployments/{deployment.pk}/").content.decode()
    owner.post(f"/deployments/{deployment.pk}/override-freeze/", {"reason": "The fix"})
    deployment.refresh_from_db()
    assert deployment.status == "running"
    assert deployment.freeze_override == "The fix (olga)"
    owner.post("/calendar/environments/prod/unlock/")
    assert 'data-testid="lock-banner"' not in owner.get("/environments/prod/").content.decode()


def test_the_calendar_component_gets_bookings_and_freezes_of_the_visible_range(world):
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    hidden = make_environment(make_team("vault-team"), "vault")
    booking_request(actor=None, environment=hidden, starts_at=at(2), ends_at=at(3), title="hidden")
    mine = booking_request(actor=world["member"], environment=world["prod"], starts_at=at(2), ends_at=at(3), title="x")
    freeze_create(
        actor=None,
        title="Nightly",
        reason="Backups.",
        environments=[world["prod"]],
        starts_at=at(1),
        ends_at=at(1.5),
        rrule="FREQ=DAILY",
    )
    client = Client()
    client.force_login(world["member"])
    assert client.get("/calendar/events.json").status_code == 400
    overflow = {"start": "9999-12-31T23:00:00-06:56", "end": "9999-12-31T23:59:00-06:56"}
    assert client.get("/calendar/events.json", overflow).status_code == 400
    api = bearer_client(world["member"], scopes=("read",))
    assert api.get("/api/v1/bookings/", {"end": overflow["end"]}).status_code == 400
    span = {"start": at(0).isoformat(), "end": at(24 * 7).isoformat()}
    with CaptureQueriesContext(connection) as captured:
        items = client.get("/calendar/events.json", span).json()
    bookings = [i for i in items if i["extendedProps"]["kind"] == "booking"]
    assert [b["extendedProps"]["booking"] for b in bookings] == [mine.pk]  # not the vault's
    assert bookings[0]["extendedProps"]["cancel"] == f"/calendar/bookings/{mine.pk}/cancel/"
    assert bookings[0]["extendedProps"]["approve"] == ""  # walt does not own prod
    freezes_shown = [i for i in items if i["extendedProps"]["kind"] == "freeze"]
    assert len(freezes_shown) == 7  # one a day
    assert all(f["display"] == "background" for f in freezes_shown)
    for i in range(5):
        booking_request(
            actor=world["member"], environment=world["prod"], starts_at=at(10 + i), ends_at=at(10.5 + i), title=f"b{i}"
        )
    with CaptureQueriesContext(connection) as more:
        assert len(client.get("/calendar/events.json", span).json()) == 13
    assert len(more) == len(captured)
