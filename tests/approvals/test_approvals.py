"""Approval gates: policies, separation of duties, decisions bound to the plan, concurrency, expiry, API."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.services import team_add_member
from apps.approvals.models import ApprovalRequest, Decision
from apps.approvals.services import approve, expire_due, policy_set, reject
from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from apps.deployments.services import deployment_cancel, deployment_create, template_create
from apps.environments.services import environment_grant
from apps.releases.services import release_create
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    register,
)

STEPS = [{"name": "Noop", "kind": "wait", "params": {"seconds": 0}}]


def _scene(required: int = 2, approvers: int = 3, **policy):
    """staging needs `required` approvals from release managers; dora deploys, rita made the release."""
    devs, managers = make_team(), make_team()
    dora, rita = make_user("dora"), make_user("rita")
    for user in (dora, rita):
        team_add_member(actor=None, team=devs, user=user)
    people = [make_user(f"approver-{i}") for i in range(approvers)]
    for person in people:
        team_add_member(actor=None, team=managers, user=person)
    staging = make_environment(devs, "staging")
    make_target(staging, "web-1")
    environment_grant(actor=None, environment=staging, team=devs, action="deploy")
    environment_grant(actor=None, environment=staging, team=managers, action="approve")
    application = make_application(devs, "shop")
    application_grant(actor=None, application=application, team=managers, action="view")
    artifact = register(application, "1.0.0", by=rita)
    release = release_create(actor=rita, application=application, artifacts=[artifact])
    policy_set(actor=None, environment=staging, required_approvals=required, eligible_teams=[managers], **policy)
    template = template_create(actor=None, slug="noop", name="Noop", steps=STEPS)
    return {
        "dora": dora,
        "rita": rita,
        "people": people,
        "staging": staging,
        "release": release,
        "template": template,
        "devs": devs,
        "managers": managers,
    }


@pytest.fixture
def scene(db):
    return _scene()


def request_deploy(scene, **options):
    return deployment_create(
        actor=scene["dora"],
        release=scene["release"],
        environment=scene["staging"],
        template=scene["template"],
        **options,
    )


def test_a_deployment_waits_for_n_distinct_approvers_then_goes_on(scene):
    deployment = request_deploy(scene)
    assert deployment.status == "pending_approval"
    request = ApprovalRequest.objects.get(deployment=deployment)
    assert (request.plan_digest, request.required_approvals) == (deployment.plan_digest, 2)
    amy, ben, _ = scene["people"]
    approve(actor=amy, deployment=deployment, comment="Looks right.")
    deployment.refresh_from_db()
    assert deployment.status == "pending_approval"
    with pytest.raises(Conflict, match="one person counts once"):
        approve(actor=amy, deployment=deployment)
    approve(actor=ben, deployment=deployment, plan_digest=deployment.plan_digest)
    deployment.refresh_from_db()
    assert deployment.status == "running"  # approved, queued, and started: the environment was free
    request.refresh_from_db()
    assert request.status == "approved"
    verbs = set(AuditEvent.objects.filter(object_id=str(deployment.pk)).values_list("verb", flat=True))
    assert {"approval.requested", "approval.approved", "deployment.queued", "deployment.running"} <= verbs


def test_separation_of_duties_and_eligibility(scene):
    deployment = request_deploy(scene)
    environment_grant(actor=None, environment=scene["staging"], team=scene["devs"], action="approve")
    team_add_member(actor=None, team=scene["managers"], user=scene["dora"])
    team_add_member(actor=None, team=scene["managers"], user=scene["rita"])
    with pytest.raises(PermissionDenied, match="You requested this deployment"):
        approve(actor=scene["dora"], deployment=deployment)
    with pytest.raises(PermissionDenied, match="You created this release"):
        approve(actor=scene["rita"], deployment=deployment)
    outsider = make_user("otto")
    other = make_team()
    team_add_member(actor=None, team=other, user=outsider)
    environment_grant(actor=None, environment=scene["staging"], team=other, action="approve")
    application_grant(actor=None, application=scene["release"].application, team=other, action="view")
    with pytest.raises(PermissionDenied, match="Only members of"):
        approve(actor=outsider, deployment=deployment)
    assert not Decision.objects.exists()


def test_a_rejection_needs_a_comment_and_rejects(scene):
    deployment = request_deploy(scene)
    amy = scene["people"][0]
    with pytest.raises(ValidationFailed):
        reject(actor=amy, deployment=deployment, comment="  ")
    reject(actor=amy, deployment=deployment, comment="Not during the sale.")
    deployment.refresh_from_db()
    assert (deployment.status, deployment.status_reason) == ("rejected", "Rejected by an approver.")
    with pytest.raises(InvalidTransition):
        approve(actor=scene["people"][1], deployment=deployment)


def test_approvals_are_bound_to_the_plan(scene):
    first = request_deploy(scene)
    approve(actor=scene["people"][0], deployment=first)
    with pytest.raises(Conflict, match="not this deployment's plan"):
        approve(actor=scene["people"][1], deployment=first, plan_digest="0" * 64)
    deployment_cancel(actor=scene["dora"], deployment=first)
    second = request_deploy(scene, strategy_options={"health_gate": False})
    assert second.plan_digest != first.plan_digest
    assert ApprovalRequest.objects.get(deployment=second).decisions.count() == 0  # nothing carried over
    assert ApprovalRequest.objects.get(deployment=first).status == "cancelled"


def test_an_unanswered_request_expires(db):
    scene = _scene(expires_after=timedelta(minutes=5))
    deployment = request_deploy(scene)
    assert expire_due() == 0
    ApprovalRequest.objects.filter(deployment=deployment).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due() == 1
    deployment.refresh_from_db()
    assert (deployment.status, deployment.status_reason) == ("rejected", "expired")
    assert AuditEvent.objects.filter(verb="approval.expired", object_id=str(deployment.pk)).exists()


def _race(calls):
    errors = []

    def run(call):
        try:
            call()
        except Conflict:
            errors.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_approvals_never_lose_one_and_count_a_person_once(transactional_db):
    scene = _scene(required=10, approvers=10)
    deployment = request_deploy(scene)
    same = scene["people"][0]
    assert _race([lambda: approve(actor=same, deployment=deployment) for _ in range(10)]) == ["conflict"] * 9
    errors = _race([lambda p=p: approve(actor=p, deployment=deployment) for p in scene["people"][1:]])
    assert errors == []
    assert Decision.objects.filter(request__deployment=deployment).count() == 10
    deployment.refresh_from_db()
    assert deployment.status == "running"


def test_the_api_approve_and_reject(scene):
    deployment = request_deploy(scene)
    url = f"/api/v1/deployments/{deployment.pk}/"
    requester = bearer_client(scene["dora"], scopes=("read", "deployments:write"))
    assert requester.post(url + "approve/", {}, format="json").status_code == 403
    amy = bearer_client(scene["people"][0], scopes=("read", "deployments:write"))
    body = amy.post(url + "approve/", {"comment": "ok", "plan_digest": deployment.plan_digest}, format="json").json()
    assert body["approvals"]["decisions"][0]["user"] == "approver-0"
    assert body["approvals"]["required_approvals"] == 2
    assert amy.post(url + "approve/", {}, format="json").status_code == 409
    ben = bearer_client(scene["people"][1], scopes=("read", "deployments:write"))
    assert ben.post(url + "reject/", {"comment": ""}, format="json").status_code == 400
    response = ben.post(url + "reject/", {"comment": "No."}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "rejected")


def test_the_policy_api_needs_manage(scene):
    admin = bearer_client(make_user("root", is_superuser=True, is_staff=True), scopes=("read", "config:write"))
    body = admin.put(
        "/api/v1/approval-policies/staging/",
        {"required_approvals": 3, "eligible_teams": [scene["managers"].slug], "expires_after_seconds": 3600},
        format="json",
    ).json()
    assert (body["required_approvals"], body["expires_after_seconds"]) == (3, 3600)
    assert admin.get("/api/v1/approval-policies/").json()["count"] == 1
    deployer = bearer_client(scene["people"][1], scopes=("read", "config:write"))  # may approve, not manage
    assert (
        deployer.put("/api/v1/approval-policies/staging/", {"required_approvals": 1}, format="json").status_code == 403
    )
    assert admin.put("/api/v1/approval-policies/staging/", {"required_approvals": 0}, format="json").status_code == 400
    assert admin.delete("/api/v1/approval-policies/staging/").status_code == 204
    assert request_deploy(scene).status == "running"


def test_approvers_hear_of_a_request_and_the_requester_of_the_decision(scene):
    from apps.notifications.models import Delivery

    deployment = request_deploy(scene)
    asked = Delivery.objects.filter(event="approval.requested", payload__deployment=deployment.pk)
    assert sorted(asked.values_list("recipient", flat=True)) == [f"approver-{i}@example.com" for i in range(3)]
    reject(actor=scene["people"][0], deployment=deployment, comment="Not now.")
    told = Delivery.objects.get(event="approval.decided", payload__deployment=deployment.pk)
    assert told.recipient == "dora@example.com"
    assert "rejected by approver-0" in told.payload["subject"]
