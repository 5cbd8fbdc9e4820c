"""Continuous deployment end to end, with a real worker: CI registers a build, ReleaseHub makes the release,
deploys it to dev, promotes it to test by itself, stops for two approvers before staging and for one
before production, where a rejection stops it."""

from __future__ import annotations

import hashlib

import pytest

from apps.accounts.services import team_add_member
from apps.approvals.services import policy_set
from apps.catalog.models import CdTrigger
from apps.catalog.services import application_grant, application_update
from apps.core.errors import ValidationFailed
from apps.deployments.models import Deployment
from apps.environments.services import environment_grant, lifecycle_create
from apps.releases.lifecycle import obstacles, unblock
from apps.releases.models import Release, ReleaseBlock
from tests.factories import bearer_client, make_application, make_environment, make_target, make_team, make_user

from .conftest import make_template, tarball, wait_for


def _world(http_server, tmp_path):
    platform, managers = make_team(), make_team()
    ci, approvers = make_user("ci"), [make_user(f"manager-{i}") for i in range(3)]
    team_add_member(actor=None, team=platform, user=ci)
    for person in approvers:
        team_add_member(actor=None, team=managers, user=person)
    environments = {}
    for slug in ("dev", "test", "staging", "prod"):
        environments[slug] = make_environment(platform, slug)
        make_target(environments[slug], f"{slug}-1", path=str(tmp_path / slug))
        environment_grant(actor=None, environment=environments[slug], team=managers, action="approve")
    environment_grant(actor=None, environment=environments["staging"], team=platform, action="approve")
    policy_set(actor=None, environment=environments["staging"], required_approvals=2)
    policy_set(actor=None, environment=environments["prod"], required_approvals=1)
    flow = lifecycle_create(
        actor=None,
        slug="flow",
        name="Flow",
        stages=[
            {"name": name, "automatic": True, "environments": [environments[name]]}
            for name in ("dev", "test", "staging", "prod")
        ],
    )
    application = make_application(platform, "shop")
    application_grant(actor=None, application=application, team=managers, action="view")
    template = make_template([{"name": "Install", "kind": "release_dir", "params": {}}])
    application_update(actor=None, application=application, default_template=template)
    CdTrigger.objects.create(application=application, branch_pattern="main", lifecycle=flow)
    CdTrigger.objects.create(application=application, branch_pattern="release/*", lifecycle=flow, active=False)
    return {"ci": ci, "approvers": approvers, "environments": environments, "application": application}


def register_build(world, http_server, version: str, branch: str = "main"):
    body = tarball(version)
    http_server.files[f"/shop-{version}.tar.gz"] = body
    client = bearer_client(world["ci"], scopes=("artifacts:write", "read"))
    response = client.post(
        "/api/v1/artifacts/",
        {
            "application": "shop",
            "version": version,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "uri": f"{http_server.url}/shop-{version}.tar.gz",
            "branch": branch,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def deployment_to(release, slug: str) -> Deployment:
    return Deployment.objects.filter(release=release, environment__slug=slug).latest("created_at")


def test_a_build_flows_through_the_lifecycle_and_stops_for_people(http_server, tmp_path, celery_worker):
    world = _world(http_server, tmp_path)
    register_build(world, http_server, "1.0.0")
    release = Release.objects.get(application__slug="shop", version="1.0.0")
    assert (release.lifecycle.slug, release.created_by) == ("flow", world["ci"])

    # dev by the trigger, test by automatic promotion, then staging waits for two people.
    staging = wait_for(_first(release, "staging"), {"pending_approval"}, timeout=60)
    assert wait_for(deployment_to(release, "dev")).status == "succeeded"
    assert wait_for(deployment_to(release, "test")).status == "succeeded"
    assert staging.created_by == world["ci"]  # CI set it off: CI may not approve it
    url = f"/api/v1/deployments/{staging.pk}/approve/"
    refused = bearer_client(world["ci"], scopes=("read", "deployments:write")).post(url, {}, format="json")
    assert refused.status_code == 403
    assert "You requested this deployment" in refused.json()["detail"]
    for person in world["approvers"][:2]:
        client = bearer_client(person, scopes=("read", "deployments:write"))
        assert client.post(url, {"plan_digest": staging.plan_digest}, format="json").status_code == 200
    assert wait_for(staging).status == "succeeded"

    # Production: one approval needed; a rejection stops it.
    prod = wait_for(_first(release, "prod"), {"pending_approval"}, timeout=30)
    client = bearer_client(world["approvers"][2], scopes=("read", "deployments:write"))
    response = client.post(f"/api/v1/deployments/{prod.pk}/reject/", {"comment": "Not on a Friday."}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "rejected")
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["dev", "staging", "test"]


def _first(release, slug: str, timeout: float = 60) -> Deployment:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = Deployment.objects.filter(release=release, environment__slug=slug).first()
        if found:
            return found
        from apps.deployments.engine import runner

        runner.dispatch()
        time.sleep(0.3)
    raise AssertionError(f"no deployment of {release} to {slug}")


def test_a_failed_release_is_blocked_there_until_someone_lifts_it(http_server, tmp_path, celery_worker):
    world = _world(http_server, tmp_path)
    register_build(world, http_server, "1.0.0", branch="feature/x")  # no trigger matches: no release
    assert not Release.objects.exists()
    http_server.files["/shop-2.0.0.tar.gz"] = b"not what was registered"
    client = bearer_client(world["ci"], scopes=("artifacts:write", "read"))
    client.post(
        "/api/v1/artifacts/",
        {
            "application": "shop",
            "version": "2.0.0",
            "digest": "sha256:" + "1" * 64,
            "uri": f"{http_server.url}/shop-2.0.0.tar.gz",
            "branch": "main",
        },
        format="json",
    )
    release = Release.objects.get(version="2.0.0")
    dev = world["environments"]["dev"]
    assert wait_for(_first(release, "dev")).status == "failed"  # the digest does not match
    block = ReleaseBlock.objects.get(release=release, environment=dev)
    assert block.lifted_at is None
    assert obstacles(release, dev)[0].startswith("Blocked in")
    api = bearer_client(world["ci"], scopes=("read", "deployments:write"))
    blocked = api.post(f"/api/v1/releases/{release.pk}/deploy/", {"environment": "dev"}, format="json")
    assert (blocked.status_code, blocked.json()["error"]) == (422, "policy_violation")
    skipping = api.post(f"/api/v1/releases/{release.pk}/deploy/", {"environment": "test"}, format="json")
    assert skipping.status_code == 422
    assert "has not succeeded in the previous stage" in skipping.json()["detail"]
    with pytest.raises(ValidationFailed) as refused:
        unblock(actor=None, release=release, environment=dev, reason=" ")
    assert "reason" in refused.value.fields
    unblock(actor=None, release=release, environment=dev, reason="The artifact store is fixed.")
    assert obstacles(release, dev) == []


def test_cd_triggers_api_needs_manage_on_the_application(db):
    owners = make_team()
    owner, viewer = make_user("owen"), make_user("vera")
    team_add_member(actor=None, team=owners, user=owner)
    application = make_application(owners, "shop")
    viewers = make_team()
    team_add_member(actor=None, team=viewers, user=viewer)
    application_grant(actor=None, application=application, team=viewers, action="view")
    dev = make_environment(owners, "dev")
    lifecycle_create(actor=None, slug="flow", name="Flow", stages=[{"name": "Dev", "environments": [dev]}])
    body = {"application": "shop", "branch_pattern": "release/*", "lifecycle": "flow"}
    owner_api = bearer_client(owner, scopes=("read", "config:write"))
    created = owner_api.post("/api/v1/cd-triggers/", body, format="json")
    assert created.status_code == 201, created.json()
    assert (
        bearer_client(viewer, scopes=("read", "config:write"))
        .post("/api/v1/cd-triggers/", body, format="json")
        .status_code
        == 403
    )
    assert owner_api.post("/api/v1/cd-triggers/", {**body, "branch_pattern": "a b"}, format="json").status_code == 400
    assert owner_api.get("/api/v1/cd-triggers/?application=shop").json()["count"] == 1
    trigger = created.json()["id"]
    assert (
        owner_api.patch(f"/api/v1/cd-triggers/{trigger}/", {"active": False}, format="json").json()["active"] is False
    )
    assert owner_api.delete(f"/api/v1/cd-triggers/{trigger}/").status_code == 204
