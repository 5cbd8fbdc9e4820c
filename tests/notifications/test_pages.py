"""The notifications page: the signed-in person's subscriptions (add, pause, delete) and recent deliveries."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.notifications.models import Subscription
from apps.notifications.services import notify, subscription_create
from tests.factories import make_environment, make_team, make_user

from .conftest import SECRET

PAGE = "/notifications/"


@pytest.fixture
def stage(db):
    alice, bob = make_user("alice"), make_user("bob")
    team = make_team(members=(alice, bob))
    environment = make_environment(team, "prod", name="Production", tier="production")
    hidden = make_environment(make_team(), "secret-env", name="Hidden place")
    return {"alice": alice, "bob": bob, "env": environment, "hidden": hidden}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_needs_a_sign_in(db):
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_page_lists_subscriptions_deliveries_and_environments(stage, django_assert_max_num_queries):
    alice = stage["alice"]
    subscription_create(
        actor=alice,
        events=["deployment.failed"],
        channel="webhook",
        url="https://hooks.example.com/T0KEN",
        secret=SECRET,
    )
    subscription_create(actor=alice, events=["approval.requested"], channel="email", environment=stage["env"])
    subscription_create(actor=stage["bob"], events=["deployment.failed"], channel="email")
    notify("deployment.failed", environment=stage["env"], subject="Deployment #9 failed", body="b", url="/")
    client = _client(alice)
    client.get(PAGE)
    with django_assert_max_num_queries(12):
        response = client.get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "A deployment waits for approval" in page
    assert "https://hooks.example.com/••••" in page
    assert "T0KEN" not in page
    assert SECRET not in page
    assert "Deployment #9 failed" in page  # the delivery to her webhook
    assert "Production" in page
    assert "Hidden place" not in page
    assert page.count('data-testid="subscription-row"') == 2  # not bob's


def test_adding_a_subscription_from_the_page(stage):
    client = _client(stage["alice"])
    response = client.post(
        PAGE,
        {
            "events": ["deployment.failed", "approval.decided"],
            "environment": "prod",
            "channel": "webhook",
            "url": "https://hooks.example.com/in",
            "secret": SECRET,
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.owner, subscription.environment, subscription.channel) == (
        stage["alice"],
        stage["env"],
        "webhook",
    )
    assert subscription.events == ["deployment.failed", "approval.decided"]
    assert subscription.secret_encrypted
    assert SECRET not in subscription.secret_encrypted


def test_a_bad_subscription_shows_the_errors(stage):
    client = _client(stage["alice"])
    response = client.post(PAGE, {"events": ["deployment.failed"], "channel": "webhook", "url": "https://x.example/"})
    assert response.status_code == 400
    assert "The signing secret: from 16 to 256 characters" in response.content.decode()
    response = client.post(PAGE, {"channel": "email"})
    assert response.status_code == 400
    response = client.post(PAGE, {"events": ["deployment.failed"], "channel": "email", "environment": "secret-env"})
    assert response.status_code == 400  # not among the choices: she may not view it
    assert not Subscription.objects.exists()


def test_pause_resume_and_delete(stage):
    alice = stage["alice"]
    subscription = subscription_create(actor=alice, events=["deployment.failed"], channel="email")
    client = _client(alice)
    toggle = reverse("notifications:subscription-toggle", args=[subscription.pk])
    assert client.get(toggle).status_code == 405
    assert client.post(toggle).status_code == 302
    subscription.refresh_from_db()
    assert not subscription.active
    client.post(toggle)
    subscription.refresh_from_db()
    assert subscription.active
    assert client.post(reverse("notifications:subscription-delete", args=[subscription.pk])).status_code == 302
    assert not Subscription.objects.exists()


def test_someone_elses_subscription_is_404_on_the_page(stage):
    theirs = subscription_create(actor=stage["bob"], events=["deployment.failed"], channel="email")
    client = _client(stage["alice"])
    assert client.post(reverse("notifications:subscription-toggle", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notifications:subscription-delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.active
    staff = make_user("stella", is_staff=True)
    team_subscription = subscription_create(
        actor=staff, team=stage["env"].owner_team, events=["deployment.failed"], channel="email"
    )
    # The page manages one's own subscriptions only, staff included (team ones: the API and the admin).
    assert (
        _client(staff).post(reverse("notifications:subscription-delete", args=[team_subscription.pk])).status_code
        == 404
    )
