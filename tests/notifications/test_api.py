"""Subscriptions and deliveries API: own rows only (404 for others'), staff for teams, secrets write-only and
encrypted at rest, validation, scopes, audit, constant queries."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.core.crypto import decrypt
from apps.notifications.models import Delivery, Subscription
from apps.notifications.services import notify, subscription_create
from tests.factories import bearer_client, make_environment, make_team, make_user, session_client

from .conftest import SECRET

URL = "/api/v1/subscriptions/"
APPRISE = "json://127.0.0.1:9/room-token-ABCDEFG"


@pytest.fixture
def stage(db):
    alice, bob = make_user("alice"), make_user("bob")
    team = make_team(members=(alice, bob))
    return {"alice": alice, "bob": bob, "team": team, "env": make_environment(team, "prod", tier="production")}


def _webhook_body(**extra):
    return {
        "events": ["deployment.failed"],
        "channel": "webhook",
        "url": "https://hooks.example.com/services/T0KEN/abc",
        "secret": SECRET,
        **extra,
    }


def test_create_list_update_delete_own_subscription(stage):
    client = session_client(stage["alice"])
    response = client.post(URL, {"events": ["approval.requested", "deployment.failed"], "channel": "email"})
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["owner"] == "alice"
    assert (created["team"], created["environment"], created["active"]) == (None, None, True)
    assert created["target"] == "your email address"
    pk = created["id"]

    response = client.patch(f"{URL}{pk}/", {"environment": "prod", "events": ["deployment.failed"]})
    assert response.status_code == 200, response.json()
    assert (response.json()["environment"], response.json()["events"]) == ("prod", ["deployment.failed"])

    response = client.get(URL)
    assert [row["id"] for row in response.json()["results"]] == [pk]
    assert client.delete(f"{URL}{pk}/").status_code == 204
    assert not Subscription.objects.exists()
    events = AuditEvent.objects.filter(object_type="notifications.subscription").order_by("id")
    verbs = list(events.values_list("verb", flat=True))
    assert verbs == ["subscription.created", "subscription.updated", "subscription.deleted"]


def test_someone_elses_subscription_is_404(stage):
    theirs = subscription_create(actor=stage["bob"], events=["deployment.failed"], channel="email")
    client = session_client(stage["alice"])
    assert client.get(URL).json()["results"] == []
    assert client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert client.patch(f"{URL}{theirs.pk}/", {"active": False}).status_code == 404
    assert client.delete(f"{URL}{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.active


def test_team_subscriptions_are_for_staff(stage):
    team = stage["team"]
    client = session_client(stage["alice"])
    response = client.post(URL, {"events": ["deployment.failed"], "channel": "email", "team": team.slug})
    assert response.status_code == 403
    staff = make_user("stella", is_staff=True)
    response = session_client(staff).post(URL, {"events": ["deployment.failed"], "channel": "email", "team": team.slug})
    assert response.status_code == 201
    body = response.json()
    assert (body["owner"], body["team"], body["target"]) == (None, team.slug, "team members' email addresses")
    assert client.get(f"{URL}{body['id']}/").status_code == 404  # members do not manage it
    assert session_client(staff).get(URL).json()["count"] == 1


def test_secrets_are_write_only_and_encrypted_at_rest(stage):
    client = session_client(stage["alice"])
    response = client.post(URL, _webhook_body())
    assert response.status_code == 201, response.json()
    webhook = response.json()
    assert "secret" not in webhook
    assert webhook["has_secret"] is True
    assert SECRET not in json.dumps(webhook)
    assert webhook["target"] == "https://hooks.example.com/••••"
    response = client.post(URL, {"events": ["deployment.failed"], "channel": "chat", "apprise_url": APPRISE})
    assert response.status_code == 201, response.json()
    chat = response.json()
    assert "apprise_url" not in chat
    assert "room-token" not in json.dumps(chat)
    assert chat["target"] == "json://••••"
    listed = json.dumps(client.get(URL).json())
    assert SECRET not in listed
    assert "room-token" not in listed

    with connection.cursor() as cursor:
        cursor.execute("SELECT id, secret_encrypted, apprise_url_encrypted FROM notifications_subscription")
        rows = {pk: (secret, apprise) for pk, secret, apprise in cursor.fetchall()}
        cursor.execute("SELECT secret_encrypted, apprise_url_encrypted FROM notifications_historicalsubscription")
        history = " ".join(a + b for a, b in cursor.fetchall())
    secret_column, _ = rows[webhook["id"]]
    _, apprise_column = rows[chat["id"]]
    assert secret_column != SECRET
    assert SECRET not in secret_column
    assert decrypt(secret_column) == SECRET
    assert "room-token" not in apprise_column
    assert decrypt(apprise_column) == APPRISE
    assert SECRET not in history
    assert "room-token" not in history
    audit = " ".join(AuditEvent.objects.values_list("details_json", flat=True))
    assert SECRET not in audit
    assert "room-token" not in audit
    assert "T0KEN" not in audit

    notify("deployment.failed", environment=stage["env"], subject="s", body="b", url="/")
    recipients = set(Delivery.objects.values_list("recipient", flat=True))
    assert recipients == {"https://hooks.example.com/••••", "json://••••"}
    payloads = json.dumps(list(Delivery.objects.values_list("payload", flat=True)))
    assert SECRET not in payloads
    assert "room-token" not in payloads
    assert "T0KEN" not in payloads


def test_changing_a_secret_records_that_it_changed_not_its_value(stage):
    client = session_client(stage["alice"])
    pk = client.post(URL, _webhook_body()).json()["id"]
    new_secret = "n3w-s3cret-value-0123456789"
    response = client.patch(f"{URL}{pk}/", {"secret": new_secret})
    assert response.status_code == 200
    assert decrypt(Subscription.objects.get(pk=pk).secret_encrypted) == new_secret
    event = AuditEvent.objects.get(verb="subscription.updated")
    assert new_secret not in event.details_json
    assert json.loads(event.details_json)["changes"]["secret"] == "••••"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["deployment.exploded"], "channel": "email"}, "events.0"),
        ({"events": [], "channel": "email"}, "events"),
        ({"events": ["deployment.failed", "deployment.failed"], "channel": "email"}, "events"),
        ({"events": ["deployment.failed"], "channel": "pager"}, "channel"),
        ({"events": ["deployment.failed"], "channel": "email", "url": "https://x.example.com/"}, "url"),
        ({"events": ["deployment.failed"], "channel": "email", "secret": SECRET}, "secret"),
        ({"events": ["deployment.failed"], "channel": "webhook", "secret": SECRET}, "url"),
        ({"events": ["deployment.failed"], "channel": "webhook", "url": "https://x.example.com/"}, "secret"),
        ({**_webhook_body(), "secret": "short"}, "secret"),
        ({**_webhook_body(), "url": "ftp://x.example.com/"}, "url"),
        ({"events": ["deployment.failed"], "channel": "chat"}, "apprise_url"),
        ({"events": ["deployment.failed"], "channel": "chat", "apprise_url": "nonsense://x"}, "apprise_url"),
        ({"events": ["deployment.failed"], "channel": "email", "environment": "nowhere"}, "environment"),
    ],
)
def test_bad_input_is_400_naming_the_field(stage, body, field):
    response = session_client(stage["alice"]).post(URL, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not Subscription.objects.exists()


def test_an_environment_you_cannot_view_is_unknown(stage):
    hidden = make_environment(make_team(), "hidden")
    client = session_client(stage["alice"])
    hidden_answer = client.post(URL, {"events": ["deployment.failed"], "channel": "email", "environment": hidden.slug})
    missing_answer = client.post(URL, {"events": ["deployment.failed"], "channel": "email", "environment": "nope"})
    assert hidden_answer.status_code == missing_answer.status_code == 400
    assert (
        hidden_answer.json()["fields"] == missing_answer.json()["fields"] == {"environment": ["Unknown environment."]}
    )


def test_tokens_need_config_write_to_change_subscriptions(stage):
    body = {"events": ["deployment.failed"], "channel": "email"}
    reader = bearer_client(stage["alice"], scopes=("read",))
    assert reader.get(URL).status_code == 200
    assert reader.post(URL, body).status_code == 403
    writer = bearer_client(stage["alice"], scopes=("read", "config:write"))
    assert writer.post(URL, body).status_code == 201


def test_anonymous_callers_are_401(db, api_client):
    assert api_client.get(URL).status_code == 401
    assert api_client.get("/api/v1/deliveries/").status_code == 401


def test_deliveries_are_listed_for_their_owner_and_filtered(stage):
    alice, bob = stage["alice"], stage["bob"]
    subscription_create(actor=alice, events=["deployment.failed", "approval.decided"], channel="email")
    subscription_create(actor=bob, events=["deployment.failed"], channel="email")
    for event in ("deployment.failed", "approval.decided"):
        notify(event, environment=stage["env"], subject=event, body="b", url="/deployments/1/", data={"n": 1})
    Delivery.objects.filter(event="approval.decided").update(status="sent")

    client = session_client(alice)
    rows = client.get("/api/v1/deliveries/").json()["results"]
    assert {(r["event"], r["recipient"]) for r in rows} == {
        ("deployment.failed", alice.email),
        ("approval.decided", alice.email),
    }
    row = rows[0]
    assert row["payload"]["url"] == "http://127.0.0.1:8000/deployments/1/"
    assert row["attempt_log"] == []
    filtered = client.get("/api/v1/deliveries/?event=approval.decided&status=sent").json()["results"]
    assert [r["event"] for r in filtered] == ["approval.decided"]
    assert client.get("/api/v1/deliveries/?status=nonsense").status_code == 400
    bobs = Delivery.objects.get(recipient=bob.email)
    assert client.get(f"/api/v1/deliveries/{bobs.pk}/").status_code == 404
    staff = make_user("stella", is_staff=True)
    assert session_client(staff).get("/api/v1/deliveries/").json()["count"] == 3


def test_lists_take_a_constant_number_of_queries(stage, django_assert_max_num_queries):
    alice = stage["alice"]
    client = session_client(alice)
    client.get(URL)
    client.get("/api/v1/deliveries/")  # warm up: session, content types, permissions
    for _ in range(5):
        subscription_create(actor=alice, events=["deployment.failed"], channel="email", environment=stage["env"])
        notify("deployment.failed", environment=stage["env"], subject="s", body="b", url="/")
    with django_assert_max_num_queries(8):
        assert client.get(URL).json()["count"] == 5
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/deliveries/").json()["count"] == 5


def test_key_rotation_re_encrypts_subscription_secrets(stage, settings):
    from cryptography.fernet import Fernet

    from apps.notifications.services import subscription_secrets_rotate

    old_key = settings.RELEASEHUB_ENCRYPTION_KEY.split(",")[0]
    webhook = subscription_create(actor=stage["alice"], **_webhook_body())
    chat = subscription_create(actor=stage["alice"], events=["deployment.failed"], channel="chat", apprise_url=APPRISE)
    email = subscription_create(actor=stage["alice"], events=["deployment.failed"], channel="email")
    new_key = Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new_key},{old_key}"
    assert subscription_secrets_rotate() == 2
    settings.RELEASEHUB_ENCRYPTION_KEY = new_key  # the old key is gone: the values open with the new one
    webhook.refresh_from_db()
    chat.refresh_from_db()
    email.refresh_from_db()
    assert decrypt(webhook.secret_encrypted) == SECRET
    assert decrypt(chat.apprise_url_encrypted) == APPRISE
    assert email.secret_encrypted == email.apprise_url_encrypted == ""
    assert AuditEvent.objects.filter(verb="secrets.rotated", object_type="notifications.subscription").exists()


def test_email_subscriptions_need_an_address(stage):
    alice = stage["alice"]
    alice.email = ""
    alice.save()
    response = session_client(alice).post(URL, {"events": ["deployment.failed"], "channel": "email"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"channel": ["Your account has no email address; add one first."]}
