"""Signed action links: a confirmation page that changes nothing on GET, decides on POST through the approvals
services, and refuses other people's, damaged and expired links."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from apps.approvals.models import ApprovalRequest, Decision
from apps.notifications.links import SALT, action_link, action_token
from tests.approvals.test_approvals import _scene, request_deploy


@pytest.fixture
def pending(db):
    """A deployment to staging waiting for one approval; amy and ben may approve it."""
    scene = _scene(required=1)
    deployment = request_deploy(scene)
    amy, ben, _ = scene["people"]
    return {"deployment": deployment, "amy": amy, "ben": ben, "scene": scene}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _path(link: str) -> str:
    return urlsplit(link).path


def test_the_link_is_absolute_and_signed(pending, settings):
    settings.RELEASEHUB_BASE_URL = "https://releasehub.example.com"
    link = action_link(pending["amy"], pending["deployment"], "approve")
    assert link.startswith("https://releasehub.example.com/notifications/act/")
    claims = signing.loads(_path(link).split("/")[-2], salt=SALT)
    assert claims == {"u": pending["amy"].pk, "d": pending["deployment"].pk, "a": "approve"}


def test_get_shows_the_confirmation_and_changes_nothing(pending):
    deployment = pending["deployment"]
    response = _client(pending["amy"]).get(_path(action_link(pending["amy"], deployment, "approve")))
    assert response.status_code == 200
    page = response.content.decode()
    assert deployment.plan_digest in page
    assert f'name="plan_digest" value="{deployment.plan_digest}"' in page
    assert "Shop" in page
    assert "Staging" in page
    assert "1.0.0" in page
    assert "Approve deployment #" in page
    assert 'name="comment"' in page
    assert not Decision.objects.exists()
    deployment.refresh_from_db()
    assert deployment.status == "pending_approval"


def test_post_approves_through_the_service(pending):
    deployment = pending["deployment"]
    client = _client(pending["amy"])
    response = client.post(
        _path(action_link(pending["amy"], deployment, "approve")),
        {"comment": "Checked the plan.", "plan_digest": deployment.plan_digest},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("deployments:detail", args=[deployment.pk])
    decision = Decision.objects.get()
    assert (decision.user, decision.verdict, decision.comment, decision.plan_digest) == (
        pending["amy"],
        "approve",
        "Checked the plan.",
        deployment.plan_digest,
    )
    assert ApprovalRequest.objects.get(deployment=deployment).status == "approved"
    page = client.get(response["Location"]).content.decode()
    assert f"You approved Deployment #{deployment.pk}." in page


def test_reject_needs_a_reason_then_rejects(pending):
    deployment = pending["deployment"]
    client = _client(pending["ben"])
    path = _path(action_link(pending["ben"], deployment, "reject"))
    response = client.post(path, {"comment": " ", "plan_digest": deployment.plan_digest})
    assert response.status_code == 400
    assert "A rejection needs a comment." in response.content.decode()
    assert not Decision.objects.exists()
    response = client.post(path, {"comment": "Not during the sale.", "plan_digest": deployment.plan_digest})
    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.status == "rejected"


def test_a_decision_on_another_plan_is_refused_with_a_message(pending):
    deployment = pending["deployment"]
    client = _client(pending["amy"])
    response = client.post(
        _path(action_link(pending["amy"], deployment, "approve")), {"comment": "", "plan_digest": "0" * 64}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("deployments:detail", args=[deployment.pk])
    assert "reload it and decide again" in response.content.decode()
    assert not Decision.objects.exists()


def test_someone_elses_link_is_403(pending):
    deployment = pending["deployment"]
    link = action_link(pending["ben"], deployment, "approve")
    response = _client(pending["amy"]).get(_path(link))
    assert response.status_code == 403
    assert "someone else" in response.content.decode()
    response = _client(pending["amy"]).post(_path(link), {"plan_digest": deployment.plan_digest})
    assert response.status_code == 403
    assert not Decision.objects.exists()


class _OldSigner(signing.TimestampSigner):
    """Signs as if 73 hours ago."""

    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 73 * 3600)


@pytest.mark.parametrize("damage", ["tampered", "expired", "other_salt", "garbage"])
def test_a_damaged_or_expired_link_is_400(pending, damage):
    amy, deployment = pending["amy"], pending["deployment"]
    token = action_token(amy, deployment, "approve")
    claims = {"u": amy.pk, "d": deployment.pk, "a": "approve"}
    token = {
        "tampered": token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
        "expired": _OldSigner(salt=SALT).sign_object(claims, compress=True),
        "other_salt": signing.dumps(claims, salt="another.purpose"),
        "garbage": "not-a-token",
    }[damage]
    response = _client(amy).post(reverse("notifications:act", args=[token]), {"plan_digest": deployment.plan_digest})
    assert response.status_code == 400
    assert ("expired" if damage == "expired" else "not valid") in response.content.decode()
    assert not Decision.objects.exists()


def test_signing_in_is_required_first(pending):
    path = _path(action_link(pending["amy"], pending["deployment"], "approve"))
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_deployment_no_longer_waiting_offers_nothing_to_decide(pending):
    from apps.approvals.services import approve

    deployment = pending["deployment"]
    approve(actor=pending["ben"], deployment=deployment)
    response = _client(pending["amy"]).get(_path(action_link(pending["amy"], deployment, "approve")))
    assert response.status_code == 200
    page = response.content.decode()
    assert "no longer waits for approval" in page
    assert 'name="comment"' not in page


def test_an_ineligible_person_sees_why(pending):
    scene = pending["scene"]
    deployment = pending["deployment"]
    dora = scene["dora"]  # a developer, not a release manager: not eligible
    response = _client(dora).get(_path(action_link(dora, deployment, "approve")))
    assert response.status_code == 200
    page = response.content.decode()
    assert "You may not approve deployments to Staging." in page
    assert 'name="comment"' not in page
