"""notify(): who gets an event, what is recorded, nothing sent inline or on rollback; email content and action links;
the delivery attempt's bookkeeping (claims, masking)."""

from __future__ import annotations

import socket

import pytest
from django.core import mail
from django.db import transaction

from apps.accounts.services import team_add_member
from apps.environments.services import environment_grant
from apps.notifications.models import Delivery, Subscription
from apps.notifications.services import delivery_attempt, notify, subscription_create, subscription_update
from tests.approvals.test_approvals import _scene, request_deploy
from tests.factories import make_environment, make_team, make_user

from .conftest import SECRET, send_pending


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _stage():
    alice, bob = make_user(), make_user()
    team = make_team(members=(alice, bob))
    return alice, bob, team, make_environment(team)


def _notify(environment, event="deployment.failed", **kwargs):
    kwargs.setdefault("subject", "Deployment #3 failed")
    kwargs.setdefault("body", "It failed.")
    kwargs.setdefault("url", "/deployments/3/")
    notify(event, environment=environment, **kwargs)


def _email(owner, **kwargs):
    kwargs.setdefault("events", ["deployment.failed"])
    return subscription_create(actor=owner, channel="email", **kwargs)


def test_notify_records_deliveries_and_enqueues_them_on_commit_only(db, django_capture_on_commit_callbacks):
    alice, _, _, environment = _stage()
    _email(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                _notify(environment)
                assert Delivery.objects.count() == 1
                raise RuntimeError("the action failed")
        except RuntimeError:
            pass
    assert callbacks == []  # nothing to enqueue: rolled back with the action
    assert not Delivery.objects.exists()
    assert mail.outbox == []

    with django_capture_on_commit_callbacks() as callbacks:
        _notify(environment)
    assert len(callbacks) == 1  # sends happen in the worker, after the commit
    assert mail.outbox == []
    (delivery,) = Delivery.objects.all()
    assert (delivery.status, delivery.channel, delivery.recipient, delivery.user) == (
        "pending",
        "email",
        alice.email,
        alice,
    )


def test_unknown_events_and_bad_data_are_programming_errors(db):
    *_, environment = _stage()
    with pytest.raises(ValueError, match="Unknown notification event"):
        _notify(environment, event="deployment.exploded")
    with pytest.raises(ValueError, match="takes a dict"):
        _notify(environment, data=["not", "an", "object"])


def test_who_gets_an_event(db):
    alice, bob, team, environment = _stage()
    other_environment = make_environment(team)
    outsider = make_user()  # may not view the environment
    inactive = make_user()
    team_add_member(actor=None, team=team, user=inactive)
    inactive.is_active = False  # people leave: deactivated, still in the team
    inactive.save()

    _email(alice, environment=environment)
    _email(bob, environment=other_environment)  # another environment
    _email(bob, events=["approval.requested"])  # another event
    subscription_create(actor=None, owner=outsider, events=["deployment.failed"], channel="email")
    subscription_create(actor=None, team=team, events=["deployment.failed"], channel="email")

    _notify(environment, recipients=[alice, outsider, None])
    deliveries = list(Delivery.objects.order_by("id"))
    # alice through her own subscription (once, although the team's and the recipients name her too);
    # bob through the team's; nobody who may not view the environment; no inactive member.
    assert [(d.recipient, d.subscription.owner_id or "team") for d in deliveries] == [
        (alice.email, alice.pk),
        (bob.email, "team"),
    ]


def test_recipients_get_email_unless_their_paused_subscription_opts_them_out(db):
    alice, bob, _, environment = _stage()
    paused = _email(bob, events=["approval.requested"])
    subscription_update(actor=bob, subscription=paused, active=False)
    no_address = make_user()
    no_address.email = ""
    no_address.save()

    _notify(environment, event="approval.requested", recipients=[alice, bob, no_address])
    (delivery,) = Delivery.objects.all()
    assert (delivery.recipient, delivery.subscription, delivery.user) == (alice.email, None, alice)


def test_subscriptions_to_every_environment_only_cover_those_the_owner_may_view(db):
    alice, _, _, environment = _stage()
    elsewhere = make_environment(make_team())
    _email(alice)  # every environment
    _notify(elsewhere)
    assert not Delivery.objects.exists()
    environment_grant(actor=None, environment=elsewhere, team=alice.groups.get().team, action="view")
    _notify(elsewhere)
    assert Delivery.objects.get().recipient == alice.email
    _notify(environment)
    assert Delivery.objects.count() == 2


def test_an_approval_request_email_to_an_approver(db, settings):
    settings.RELEASEHUB_BASE_URL = "https://releasehub.example.com/"
    scene = _scene(required=1)
    deployment = request_deploy(scene)
    send_pending()  # the request's own notice to every eligible approver
    assert sorted(m.to for m in mail.outbox) == [[f"approver-{i}@example.com"] for i in range(3)]
    mail.outbox.clear()
    sent_before = Delivery.objects.filter(status="sent").count()
    amy, ben, _ = scene["people"]
    _notify(
        scene["staging"],
        event="approval.requested",
        deployment=deployment,
        subject=f"Approve deployment #{deployment.pk} of shop to Staging",
        body="dora asks to deploy shop 1.0.0 to Staging.",
        url=f"/deployments/{deployment.pk}/",
        recipients=[amy, ben],
    )
    send_pending()
    assert sorted(m.to for m in mail.outbox) == [[amy.email], [ben.email]]
    message = next(m for m in mail.outbox if m.to == [amy.email])
    assert message.subject == f"[ReleaseHub] Approve deployment #{deployment.pk} of shop to Staging"
    assert "dora asks to deploy shop 1.0.0 to Staging." in message.body
    assert f"Open it: https://releasehub.example.com/deployments/{deployment.pk}/" in message.body
    assert "Approve: https://releasehub.example.com/notifications/act/" in message.body
    assert "Reject:  https://releasehub.example.com/notifications/act/" in message.body
    assert "https://releasehub.example.com/notifications/" in message.body
    assert message.extra_headers["X-ReleaseHub-Event"] == "approval.requested"
    assert mail.outbox[0].body != mail.outbox[1].body  # each approver's links are their own
    assert Delivery.objects.filter(status="sent").count() == sent_before + 2


def test_a_team_subscription_emails_each_member(db):
    alice, bob, team, environment = _stage()
    subscription_create(actor=None, team=team, events=["deployment.failed"], channel="email")
    _notify(environment)
    send_pending()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([alice.email, bob.email])
    assert "Open it: http://127.0.0.1:8000/deployments/3/" in mail.outbox[0].body
    assert "Approve:" not in mail.outbox[0].body


def test_a_duplicate_or_early_message_does_nothing(db, settings):
    alice, _, _, environment = _stage()
    _email(alice)
    _notify(environment)
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until="2999-01-01T00:00:00Z")  # another worker holds it
    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert mail.outbox == []
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=None)
    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert delivery_attempt(delivery_id=delivery.pk) is None  # sent already
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_errors_are_recorded_without_the_urls_token(db, settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 10
    alice, _, _, environment = _stage()
    token = "T0k3n-Sup3r-S3cret-Path"
    subscription_create(
        actor=alice,
        events=["deployment.failed"],
        channel="webhook",
        url=f"http://127.0.0.1:{_closed_port()}/hooks/{token}?key=Qu3ryS3cret",
        secret=SECRET,
    )
    _notify(environment)
    delivery = Delivery.objects.get()
    assert delivery.recipient.endswith("/••••")
    assert token not in delivery.recipient
    assert delivery_attempt(delivery_id=delivery.pk) == 10  # refused: retry in NOTIFICATION_RETRY_BASE_SECONDS
    assert delivery_attempt(delivery_id=delivery.pk) is None  # not due yet
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "ConnectionError" in delivery.last_error
    for text in (delivery.last_error, delivery.attempt_log.get().error):
        assert token not in text
        assert "Qu3ryS3cret" not in text
        assert SECRET not in text


def test_a_deleted_or_paused_subscription_is_not_sent_to(db):
    alice, _, _, environment = _stage()
    subscription = subscription_create(
        actor=alice, events=["deployment.failed"], channel="webhook", url="https://hooks.example.com/x", secret=SECRET
    )
    _notify(environment)
    subscription_update(actor=alice, subscription=subscription, active=False)
    delivery = Delivery.objects.get()
    assert delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("gave_up", 1)
    assert "paused" in delivery.last_error
    Subscription.objects.filter(pk=subscription.pk).update(active=True)
    _notify(environment)
    Subscription.objects.get(pk=subscription.pk).delete()
    latest = Delivery.objects.order_by("-id").first()
    delivery_attempt(delivery_id=latest.pk)
    latest.refresh_from_db()
    assert (latest.status, latest.subscription) == ("gave_up", None)
    assert "deleted" in latest.last_error
