"""Scheduled deployments with a real worker and the beat dispatcher: one in a booked slot starts on time, one
scheduled into a freeze waits, one whose slot ended before it could start is cancelled and its requester told."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployments.engine import runner
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create
from apps.notifications.models import Delivery
from apps.scheduling.models import Booking
from apps.scheduling.services import booking_request, close_ended_slots, freeze_create
from tests.deployments.conftest import wait_for

from .test_freezes import world  # noqa: F401  (the fixture)


@pytest.fixture
def booked(world, transactional_db):  # noqa: F811
    world["prod"].requires_booking = True
    world["prod"].save()
    now = timezone.now()
    booking = booking_request(
        actor=world["owner"], environment=world["prod"], starts_at=now, ends_at=now + timedelta(hours=1), title="x"
    )
    return {**world, "booking": booking}


def schedule(setup, seconds: float) -> Deployment:
    return deployment_create(
        actor=setup["member"],
        release=setup["release"],
        environment=setup["prod"],
        template=setup["template"],
        scheduled_for=timezone.now() + timedelta(seconds=seconds),
    )


def test_a_deployment_scheduled_in_a_booked_slot_starts_on_time(booked, celery_worker):
    deployment = schedule(booked, 2)
    assert deployment.status == "scheduled"
    runner.dispatch()
    deployment.refresh_from_db()
    assert deployment.status == "scheduled"  # not yet
    deployment = wait_for(deployment, timeout=60)
    assert deployment.status == "succeeded", deployment.status_reason
    assert deployment.started_at >= deployment.scheduled_for
    assert (deployment.started_at - deployment.scheduled_for).total_seconds() < 2  # the beat runs every 0.5 s here


def test_a_deployment_scheduled_into_a_freeze_waits_with_the_reason(booked, celery_worker):
    freeze_create(
        actor=None,
        title="Peak",
        reason="Sales.",
        environments=[booked["prod"]],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    deployment = schedule(booked, 1)
    time.sleep(1.2)
    for _ in range(3):
        runner.dispatch()
    deployment.refresh_from_db()
    assert deployment.status == "queued"
    assert deployment.status_reason.startswith("Frozen by “Peak”")


def test_a_deployment_whose_slot_ended_before_it_started_is_cancelled_and_its_requester_told(booked):
    deployment = schedule(booked, 1)
    time.sleep(1.2)
    Booking.objects.filter(pk=booked["booking"].pk).update(ends_at=timezone.now())  # the slot has ended
    deployment.refresh_from_db()
    assert close_ended_slots() == 2  # the booking completed, the deployment cancelled
    assert close_ended_slots() == 0  # run twice: nothing more
    deployment.refresh_from_db()
    assert deployment.status == "cancelled"
    assert "ended before it could start" in deployment.status_reason
    told = Delivery.objects.get(event="booking.changed", payload__deployment=deployment.pk)
    assert told.recipient == booked["member"].email
    assert Booking.objects.get(pk=booked["booking"].pk).status == "completed"


def test_a_deployment_made_from_a_booking_runs_in_its_slot(booked, celery_worker):
    from tests.factories import bearer_client

    client = bearer_client(booked["member"], scopes=("read", "calendar:write", "deployments:write"))
    booking = booked["booking"]
    url = f"/api/v1/bookings/{booking.pk}/deploy/"
    assert client.post(url, {}, format="json").status_code == 400  # no release named, none booked
    response = client.post(url, {"release": booked["release"].pk, "template": "noop"}, format="json")
    assert response.status_code == 201, response.json()
    deployment = Deployment.objects.get(pk=response.json()["id"])
    booking.refresh_from_db()
    assert (booking.deployment, booking.release) == (deployment, booked["release"])
    assert wait_for(deployment).status == "succeeded"


def test_owners_are_told_of_a_booking_that_waits_for_them(booked):
    booking_request(
        actor=booked["member"],
        environment=booked["prod"],
        starts_at=timezone.now() + timedelta(hours=2),
        ends_at=timezone.now() + timedelta(hours=3),
        title="payments 1.5.0",
    )
    told = Delivery.objects.filter(event="booking.changed", recipient=booked["owner"].email)
    assert told.count() == 1
    assert "requested" in told.get().payload["subject"]
