"""Who may approve, reject and promote, through the API: one row per kind of person."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.services import team_add_member
from apps.approvals.models import ApprovalRequest
from apps.approvals.tasks import expire
from apps.catalog.services import application_grant, application_update
from apps.environments.services import environment_grant, lifecycle_create
from tests.factories import (
    bearer_client,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)

from .test_approvals import _scene, request_deploy

SCOPES = ("read", "deployments:write")


def people(scene) -> dict:
    """Every kind of person next to a deployment waiting for approval in staging."""
    outsider = make_user("outsider")  # sees nothing
    viewer = make_user("viewer")  # sees environment and application, holds no approve
    wrong_team = make_user("wrong-team")  # holds approve, but not in the policy's eligible teams
    for user, actions in ((viewer, ("view",)), (wrong_team, ("view", "approve"))):
        team = make_team()
        team_add_member(actor=None, team=team, user=user)
        for action in actions:
            environment_grant(actor=None, environment=scene["staging"], team=team, action=action)
        application_grant(actor=None, application=scene["release"].application, team=team, action="view")
    return {
        "outsider": (outsider, 404),
        "viewer": (viewer, 403),
        "wrong team": (wrong_team, 403),
        "requester": (scene["dora"], 403),
        "release creator": (scene["rita"], 403),
        "eligible approver": (scene["people"][0], 200),
    }


@pytest.mark.parametrize("verb", ["approve", "reject"])
@pytest.mark.parametrize(
    "who", ["outsider", "viewer", "wrong team", "requester", "release creator", "eligible approver"]
)
def test_decisions(db, verb, who):
    scene = _scene()
    environment_grant(actor=None, environment=scene["staging"], team=scene["devs"], action="approve")
    deployment = request_deploy(scene)
    user, expected = people(scene)[who]
    response = bearer_client(user, scopes=SCOPES).post(
        f"/api/v1/deployments/{deployment.pk}/{verb}/", {"comment": "Checked."}, format="json"
    )
    assert response.status_code == expected, response.json()


@pytest.mark.parametrize(("who", "expected"), [("viewer", 403), ("deployer", 201), ("outsider", 404)])
def test_promote(db, who, expected):
    scene = _scene()
    dev = make_environment(scene["devs"], "dev")
    make_target(dev, "dev-1")
    flow = lifecycle_create(actor=None, slug="flow", name="Flow", stages=[{"name": "Dev", "environments": [dev]}])
    application = scene["release"].application
    application_update(actor=None, application=application, lifecycle=flow, default_template=scene["template"])
    release = make_release(application, [register(application, "2.0.0", by=scene["rita"])])  # goes through flow
    viewer = make_user("viewer")
    team = make_team()
    team_add_member(actor=None, team=team, user=viewer)
    environment_grant(actor=None, environment=dev, team=team, action="view")
    application_grant(actor=None, application=application, team=team, action="view")
    user = {"viewer": viewer, "deployer": scene["dora"], "outsider": make_user("outsider")}[who]
    response = bearer_client(user, scopes=SCOPES).post(f"/api/v1/releases/{release.pk}/promote/", {}, format="json")
    assert response.status_code == expected, response.json()


def test_beat_expires_unanswered_requests_through_the_worker(transactional_db, celery_worker):
    scene = _scene(expires_after=timedelta(minutes=5))
    deployment = request_deploy(scene)
    ApprovalRequest.objects.filter(deployment=deployment).update(expires_at=timezone.now() - timedelta(seconds=1))
    expire.apply_async(headers={"releasehub_channel": "scheduler"})  # as beat sends it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if deployment.status == "rejected":
            break
        time.sleep(0.2)
    assert (deployment.status, deployment.status_reason) == ("rejected", "expired")
    assert deployment.history.filter(status="rejected").first().history_channel == "scheduler"
