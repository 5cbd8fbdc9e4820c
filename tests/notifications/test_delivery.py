"""Deliveries through a real Celery worker to a real local HTTP server: signed webhooks, retries with backoff,
giving up, chat through apprise, and email."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.core import mail

from apps.audit.models import AuditEvent
from apps.notifications.models import Delivery, DeliveryAttempt
from apps.notifications.services import MAX_ATTEMPTS, notify, subscription_create
from tests.factories import make_environment, make_team, make_user

from .conftest import SECRET, wait_for_deliveries


def _stage():
    """An environment whose owner team has alice (who may view it)."""
    alice = make_user()
    team = make_team(members=(alice,))
    return alice, team, make_environment(team)


def _webhook(owner, server, environment=None, path="/hook"):
    return subscription_create(
        actor=owner,
        events=["deployment.failed"],
        channel="webhook",
        environment=environment,
        url=f"{server.url}{path}",
        secret=SECRET,
    )


def _fail(environment, **kwargs):
    notify(
        "deployment.failed",
        environment=environment,
        subject="Deployment #7 failed",
        body="Step Migrate failed on web-1.",
        url="/deployments/7/",
        data={"deployment": 7, "status": "failed"},
        **kwargs,
    )


def test_a_webhook_is_signed_with_the_subscription_secret(celery_worker, hook_server, fast_retries, settings):
    settings.RELEASEHUB_BASE_URL = "https://releasehub.example.com"
    alice, _, environment = _stage()
    subscription = _webhook(alice, hook_server, environment)
    _fail(environment)

    (delivery,) = wait_for_deliveries(1)
    assert (delivery.status, delivery.attempts, delivery.subscription_id) == ("sent", 1, subscription.pk)
    (request,) = hook_server.received
    assert request.path == "/hook"
    assert request.signature_ok  # the receiver recomputed the HMAC of the raw body with the shared secret
    assert request.headers["X-ReleaseHub-Signature-256"] == (
        "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-ReleaseHub-Event"] == "deployment.failed"
    assert request.headers["X-ReleaseHub-Delivery"] == str(delivery.pk)
    document = json.loads(request.body)
    assert set(document) == {"event", "subject", "body", "url", "data", "sent_at", "delivery_id"}
    assert document["event"] == "deployment.failed"
    assert document["subject"] == "Deployment #7 failed"
    assert document["url"] == "https://releasehub.example.com/deployments/7/"
    assert document["data"] == {"deployment": 7, "status": "failed"}
    assert document["delivery_id"] == delivery.pk
    assert SECRET not in request.body.decode()
    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.ok, attempt.status_code) == (1, True, 200)
    event = AuditEvent.objects.get(verb="notification.delivered")
    assert event.object_id == str(delivery.pk)
    assert event.channel == "worker"
    assert not AuditEvent.objects.filter(verb="notification.failed").exists()


def test_a_failed_webhook_is_retried_and_delivered_on_the_second_attempt(celery_worker, hook_server, fast_retries):
    hook_server.statuses = [500]
    alice, _, environment = _stage()
    _webhook(alice, hook_server, environment)
    _fail(environment)

    (delivery,) = wait_for_deliveries(1)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    attempts = list(delivery.attempt_log.values_list("number", "ok", "status_code"))
    assert attempts == [(1, False, 500), (2, True, 200)]
    assert delivery.attempt_log.first().error == "HTTP 500: receiver broke"
    assert all(request.signature_ok for request in hook_server.received)
    # Each attempt is signed afresh (its sent_at differs), and names the same delivery.
    assert {json.loads(r.body)["delivery_id"] for r in hook_server.received} == {delivery.pk}
    # One audit event for the outcome, not one per attempt.
    assert AuditEvent.objects.filter(verb="notification.delivered").count() == 1
    assert not AuditEvent.objects.filter(verb="notification.failed").exists()


def test_a_webhook_that_always_fails_is_given_up_after_the_last_attempt(celery_worker, hook_server, fast_retries):
    hook_server.default_status = 500
    alice, _, environment = _stage()
    _webhook(alice, hook_server, environment)
    _fail(environment)

    (delivery,) = wait_for_deliveries(1)
    assert (delivery.status, delivery.attempts) == ("gave_up", MAX_ATTEMPTS)
    assert delivery.last_error == "HTTP 500: receiver broke"
    assert list(delivery.attempt_log.values_list("number", flat=True)) == [1, 2, 3, 4, 5]
    assert not delivery.attempt_log.filter(ok=True).exists()
    assert len(hook_server.received) == MAX_ATTEMPTS
    failed = AuditEvent.objects.get(verb="notification.failed")
    assert failed.object_id == str(delivery.pk)
    assert json.loads(failed.details_json)["attempts"] == MAX_ATTEMPTS
    assert not AuditEvent.objects.filter(verb="notification.delivered").exists()
    # History keeps each outcome of the delivery.
    assert list(delivery.history.order_by("history_id").values_list("status", flat=True)) == [
        "pending",
        *["failed"] * (MAX_ATTEMPTS - 1),
        "gave_up",
    ]


def test_chat_goes_through_apprise(celery_worker, hook_server, fast_retries):
    alice, _, environment = _stage()
    subscription_create(
        actor=alice,
        events=["deployment.failed"],
        channel="chat",
        environment=environment,
        apprise_url=f"json://127.0.0.1:{hook_server.port}/chat-room-token",
    )
    _fail(environment)

    (delivery,) = wait_for_deliveries(1)
    assert (delivery.status, delivery.channel, delivery.attempts) == ("sent", "chat", 1)
    assert delivery.recipient == "json://••••"
    (request,) = hook_server.received
    assert request.path == "/chat-room-token"
    message = json.loads(request.body)
    assert message["title"] == "Deployment #7 failed"
    assert "Step Migrate failed on web-1." in message["message"]
    assert "http://127.0.0.1:8000/deployments/7/" in message["message"]


def test_chat_failures_are_retried_then_given_up_with_a_masked_error(celery_worker, hook_server, fast_retries):
    hook_server.default_status = 503
    alice, _, environment = _stage()
    subscription_create(
        actor=alice,
        events=["deployment.failed"],
        channel="chat",
        apprise_url=f"json://127.0.0.1:{hook_server.port}/secret-room-token",
    )
    _fail(environment)

    (delivery,) = wait_for_deliveries(1)
    assert (delivery.status, delivery.attempts) == ("gave_up", MAX_ATTEMPTS)
    assert delivery.last_error
    assert "secret-room-token" not in delivery.last_error
    assert all("secret-room-token" not in a.error for a in delivery.attempt_log.all())


def test_email_to_a_team_subscription_through_the_worker(celery_worker, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alice, team, environment = _stage()
    bob = make_user()
    from apps.accounts.services import team_add_member

    team_add_member(actor=None, team=team, user=bob)
    staff = make_user(is_staff=True)
    subscription_create(actor=staff, team=team, events=["deployment.failed"], channel="email")
    _fail(environment)

    deliveries = wait_for_deliveries(2)
    assert {d.recipient for d in deliveries} == {alice.email, bob.email}
    assert all(d.status == "sent" for d in deliveries)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([alice.email, bob.email])
    message = mail.outbox[0]
    assert message.subject == "[ReleaseHub] Deployment #7 failed"
    assert "Step Migrate failed on web-1." in message.body
    assert "http://127.0.0.1:8000/deployments/7/" in message.body
    assert f"team {team.name} subscribed" in message.body
    assert len(message.to) == 1  # one message per person: nobody sees the others' addresses


@pytest.mark.parametrize("outcome", ["rolled_back", "committed"])
def test_nothing_is_sent_when_the_callers_transaction_rolls_back(celery_worker, hook_server, outcome):
    from django.db import transaction

    alice, _, environment = _stage()
    _webhook(alice, hook_server, environment)

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            _fail(environment)
            if outcome == "rolled_back":
                raise Undo
    except Undo:
        pass
    if outcome == "committed":
        wait_for_deliveries(1)
        assert len(hook_server.received) == 1
    else:
        import time

        time.sleep(1.5)  # long enough for the worker to have sent anything it was given
        assert not Delivery.objects.exists()
        assert hook_server.received == []
