"""The repository endpoint, the plan of a pull-mode deployment, and what the webhooks accept."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import ValidationFailed
from apps.deployments.engine.strategies import describe
from apps.deployments.plans import plan_rows
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_grant
from apps.gitops import providers
from apps.gitops.models import EnvironmentRepository
from apps.gitops.services import repository_set
from tests.factories import (
    bearer_client,
    make_environment,
    make_target,
    make_team,
    make_user,
    make_variable,
    unique,
)

from .conftest import MANIFEST, WEBHOOK_SECRET, gitops_template, sign

pytestmark = pytest.mark.django_db


def test_a_manager_sets_changes_and_removes_the_repository(scene):
    environment = scene.environment("web")
    client = bearer_client(scene.deployer, scopes=("read", "config:write"))
    url = f"/api/v1/environments/{environment.slug}/repository/"
    body = client.get(url).json()
    assert body["path"] == "web/shop.yaml"
    assert body["credential_variable"] == ""
    assert body["webhook_secret_variable"] == "WEBHOOK_SECRET"

    changed = client.patch(url, {"branch": "release", "credential_variable": "GIT_TOKEN"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["branch"], changed.json()["credential_variable"]) == ("release", "GIT_TOKEN")
    event = AuditEvent.objects.filter(verb="gitops.repository_updated").latest("at")
    assert event.details["changes"]["branch"] == ["main", "release"]

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    put = client.put(url, {**body, "path": "web/app.yaml"}, format="json")
    assert put.status_code == 200, put.json()
    assert EnvironmentRepository.objects.get(environment=environment).path == "web/app.yaml"
    assert list(
        AuditEvent.objects.filter(verb__startswith="gitops.repository").order_by("at").values_list("verb", flat=True)
    ) == [
        "gitops.repository_created",
        "gitops.repository_updated",
        "gitops.repository_deleted",
        "gitops.repository_created",
    ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"path": "../outside.yaml"}, "path", "relative file path"),
        ({"path": ".git/config"}, "path", "relative file path"),
        ({"url": "https://user:pw@git.example.com/envs.git"}, "url", "not in the URL"),
        ({"url": "ftp://git.example.com/envs.git"}, "url", "local path"),
        ({"url": "-oProxyCommand=touch${IFS}/tmp/x@host:envs.git"}, "url", "start with '-'"),
        ({"url": "ssh://-oProxyCommand=x/envs.git"}, "url", "start with '-'"),
        ({"branch": "-delete"}, "branch", "branch name"),
        ({"credential_variable": "REPLICAS"}, "credential_variable", "no secret variable REPLICAS"),
        ({"mode": "pull_request", "provider": ""}, "provider", "need a provider"),
        ({"provider": "gitea", "api_url": ""}, "api_url", "Gitea server"),
        ({"manifest_template": "{{ release.version"}, "manifest_template", "syntax"),
        ({"sync_timeout": 1}, "sync_timeout", "Between 10 seconds"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(scene, change, field, message):
    environment = scene.environment("web")
    client = bearer_client(scene.deployer, scopes=("read", "config:write"))
    response = client.patch(f"/api/v1/environments/{environment.slug}/repository/", change, format="json")
    assert response.status_code == 400, response.json()
    assert message in " ".join(response.json()["fields"][field])


def test_only_managers_write_and_hidden_environments_are_not_found(scene):
    environment = scene.environment("web")
    url = f"/api/v1/environments/{environment.slug}/repository/"
    viewer = make_user()
    viewers = make_team(members=(viewer,))
    environment_grant(actor=None, environment=environment, team=viewers, action="view")
    client = bearer_client(viewer, scopes=("read", "config:write"))
    assert client.get(url).status_code == 200
    assert client.patch(url, {"branch": "x"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    stranger = bearer_client(make_user(), scopes=("read", "config:write"))
    assert stranger.get(url).status_code == 404
    body = {"url": "/srv/git/x.git", "path": "a.yaml", "manifest_template": "x"}
    assert stranger.put(url, body, format="json").status_code == 404
    reader = bearer_client(scene.deployer, scopes=("read",))
    assert reader.patch(url, {"branch": "x"}, format="json").status_code == 403  # no config:write scope


def test_the_plan_carries_the_manifest_and_refuses_what_pull_mode_cannot_do(scene):
    environment = scene.environment("web")
    deployment = deployment_create(
        actor=scene.deployer, release=scene.release("1.0.0"), environment=environment, template=scene.template
    )
    params = deployment.plan["steps"][0]["params"]
    assert params["repository"]["url"] == str(scene.repo)
    assert params["manifest"].startswith("apiVersion: apps/v1")
    assert deployment.plan["phases"] == [{"name": "Commit to main", "targets": ["cluster-eu"], "steps": [0]}]
    assert describe(deployment.plan["strategy"]) == "pull mode: the GitOps operator rolls it out"
    shown = plan_rows(deployment.plan)[0]["targets"][0][1]  # what approvers read: the file as it will be written
    assert "\n\nmanifest (web/shop.yaml):\napiVersion: apps/v1\n" in shown
    assert '"manifest"' not in shown

    shell = template_create(
        actor=None,
        slug=unique("sh"),
        name="Shell",
        steps=[
            {"name": "Run", "kind": "shell", "params": {"command": "true"}},
            {"name": "Commit", "kind": "gitops_commit", "params": {}},
        ],
    )
    with pytest.raises(Exception, match="runs on targets"):
        deployment_create(actor=scene.deployer, release=scene.release("1.0.1"), environment=environment, template=shell)

    repository_set(actor=None, environment=environment, manifest_template=MANIFEST + "password: {{ var.GIT_TOKEN }}\n")
    with pytest.raises(Exception, match="secrets are never written to a repository"):
        deployment_create(
            actor=scene.deployer, release=scene.release("1.0.2"), environment=environment, template=scene.template
        )


def test_a_gitops_template_in_push_mode_is_refused(scene):
    environment = make_environment(scene.team)
    environment_grant(actor=None, environment=environment, team=scene.team, action="deploy")
    make_target(environment, "web-1")
    with pytest.raises(Exception, match="has no environment repository"):
        deployment_create(
            actor=scene.deployer, release=scene.release("1.0.0"), environment=environment, template=gitops_template()
        )


def _post(client, provider: str, body: bytes, **headers):
    return client.post(f"/api/v1/gitops/webhooks/{provider}/", body, content_type="application/json", **headers)


def test_webhooks_without_a_valid_signature_are_refused_and_audited(scene, client):
    scene.environment("web", provider="github", mode="pull_request", project="acme/envs")
    body = json.dumps({"action": "closed", "number": 1}).encode()
    assert _post(client, "github", body).status_code == 401
    assert _post(client, "github", body, HTTP_X_HUB_SIGNATURE_256=sign(body, "wrong")).status_code == 401
    assert _post(client, "gitlab", body, HTTP_X_GITLAB_TOKEN="wrong").status_code == 401  # no gitlab repository
    assert _post(client, "generic", body, HTTP_X_SIGNATURE=sign(body + b" ")).status_code == 401  # body changed
    assert _post(client, "nosuch", body).status_code == 400
    rejected = AuditEvent.objects.filter(verb="gitops.webhook_rejected")
    assert sorted(rejected.values_list("object_id", flat=True)) == ["generic", "github", "github", "gitlab"]
    assert _post(client, "github", body, HTTP_X_HUB_SIGNATURE_256=sign(body)).status_code == 202
    assert not AuditEvent.objects.filter(verb="gitops.webhook_received").exists()  # it concerned no deployment
    assert _post(client, "generic", b"[1", HTTP_X_SIGNATURE=sign(b"[1")).status_code == 400  # signed, not JSON
    odd = json.dumps({"action": "closed", "pull_request": {"number": "x"}, "repository": "acme"}).encode()
    assert (
        _post(client, "github", odd, HTTP_X_HUB_SIGNATURE_256=sign(odd), HTTP_X_GITHUB_EVENT="pull_request").status_code
        == 400
    )


def test_each_provider_payload_reads_as_an_event():
    github = {
        "action": "closed",
        "pull_request": {"number": 7, "merged": True, "merge_commit_sha": "abc1234"},
        "repository": {"full_name": "acme/envs"},
    }
    event = providers.parse("github", {"X-GitHub-Event": "pull_request"}, json.dumps(github).encode())
    assert (event.kind, event.project, event.pull_request, event.revision) == ("merged", "acme/envs", 7, "abc1234")
    opened = {**github, "action": "opened"}
    assert providers.parse("gitea", {"X-Gitea-Event": "pull_request"}, json.dumps(opened).encode()).kind == ""
    gitlab = {
        "object_kind": "merge_request",
        "project": {"path_with_namespace": "g/sub/envs"},
        "object_attributes": {"iid": 3, "action": "close"},
    }
    event = providers.parse("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, json.dumps(gitlab).encode())
    assert (event.kind, event.project, event.pull_request) == ("closed", "g/sub/envs", 3)
    argo = {"environment": "prod", "status": "Healthy", "revision": "0123456789abcdef", "message": "ok"}
    event = providers.parse("generic", {}, json.dumps(argo).encode())
    assert (event.kind, event.environment, event.revision) == ("synced", "prod", "0123456789abcdef")
    flux = {
        "severity": "error",
        "reason": "ReconciliationFailed",
        "message": "boom",
        "metadata": {"revision": "main@sha1:0123456789abcdef"},
    }
    event = providers.parse("generic", {}, json.dumps(flux).encode())
    assert (event.kind, event.revision, event.message) == ("sync_failed", "0123456789abcdef", "boom")
    assert providers.project_from_url("git@github.com:acme/envs.git") == "acme/envs"
    assert providers.project_from_url("https://gitlab.example.com/g/sub/envs.git") == "g/sub/envs"


def test_gitea_and_gitlab_signatures(scene):
    body = b'{"a": 1}'
    assert providers.signed("gitea", {"X-Gitea-Signature": sign(body).removeprefix("sha256=")}, body, WEBHOOK_SECRET)
    assert not providers.signed("gitea", {"X-Gitea-Signature": sign(body)}, body, WEBHOOK_SECRET)
    assert providers.signed("gitlab", {"X-Gitlab-Token": WEBHOOK_SECRET}, body, WEBHOOK_SECRET)
    assert providers.signed("generic", {"X-ReleaseHub-Token": WEBHOOK_SECRET}, body, WEBHOOK_SECRET)  # Argo CD
    assert not providers.signed("generic", {"X-ReleaseHub-Token": "guess"}, body, WEBHOOK_SECRET)
    assert not providers.signed("github", {"X-Hub-Signature-256": sign(body)}, body, "")  # no secret, no match


def test_the_path_is_a_template_and_pull_mode_prefers_the_environments_template(scene):
    from apps.catalog.services import application_update
    from apps.environments.services import environment_update

    environment = scene.environment("web", path="apps/{{ release.application }}/values.yaml")
    push = template_create(
        actor=None,
        slug=unique("push"),
        name="Push",
        steps=[{"name": "Run", "kind": "shell", "params": {"command": "true"}}],
    )
    application_update(actor=None, application=scene.application, default_template=push)
    environment_update(actor=None, environment=environment, default_template=scene.template)
    deployment = deployment_create(actor=scene.deployer, release=scene.release("1.0.0"), environment=environment)
    assert deployment.template_version.template == scene.template
    assert deployment.plan["steps"][0]["params"]["repository"]["path"] == f"apps/{scene.application.slug}/values.yaml"

    make_variable(environment, "DIR", "..")
    repository_set(actor=None, environment=environment, path="{{ var.DIR }}/x.yaml")
    with pytest.raises(ValidationFailed, match="The repository path: Give a relative file path"):
        deployment_create(actor=scene.deployer, release=scene.release("1.0.1"), environment=environment)


def test_a_credential_is_not_sent_over_plain_http_to_another_machine(scene):
    environment = scene.environment("web")
    with pytest.raises(ValidationFailed) as refused:
        repository_set(
            actor=None, environment=environment, url="http://git.example.com/envs.git", credential_variable="GIT_TOKEN"
        )
    assert "https only" in refused.value.fields["credential_variable"][0]


def test_health_answers_name_the_version_as_a_whole():
    from apps.deployments.steps.gitops_commit import shows_version

    assert shows_version('{"version": "1.2"}', "1.2")
    assert shows_version("payments-api 1.2 (abc)", "1.2")
    assert not shows_version('{"version": "1.20"}', "1.2")
    assert not shows_version('{"version": "11.2"}', "1.2")
    assert not shows_version('{"version": "1.2.3"}', "1.2")
