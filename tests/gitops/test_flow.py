"""Pull mode end to end: real bare repositories, the real worker, a local provider API, signed webhooks."""

from __future__ import annotations

import base64
import json
import subprocess
import threading

import pytest

from apps.approvals.services import approve, policy_set
from apps.audit.models import AuditEvent
from apps.deployments.engine import runner
from apps.deployments.models import StepRun
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_grant
from apps.gitops import git
from apps.gitops.services import repository_set
from apps.inventory.selectors import current_installations
from tests.deployments.conftest import wait_for
from tests.factories import bearer_client, make_team, make_variable, unique

from .conftest import TOKEN, WEBHOOK_SECRET, bare_repository, gitops_template, show, sign
from .conftest import git as run_git


def deploy(scene, slug: str, version: str, template=None):
    return deployment_create(
        actor=scene.deployer,
        release=scene.release(version),
        environment=scene.environments[slug],
        template=template or scene.template,
    )


def step_run(deployment) -> StepRun:
    return StepRun.objects.get(deployment=deployment, kind="gitops_commit", action="deploy")


def awaiting(deployment, text: str, timeout: float = 30):
    """Wait until the gitops step says `text` (awaiting merge / sync) while the deployment keeps running."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = StepRun.objects.filter(deployment=deployment, kind="gitops_commit").first()
        if run and text in run.message and run.status == "waiting":
            deployment.refresh_from_db()
            assert deployment.status == "running"
            return run
        runner.dispatch()
        time.sleep(0.2)
    raise AssertionError(f"the step never said {text!r}: {run and (run.status, run.message)}")


def webhook(client, provider: str, payload: dict, secret: str = WEBHOOK_SECRET, **headers):
    body = json.dumps(payload).encode()
    signature = {
        "github": {"HTTP_X_HUB_SIGNATURE_256": sign(body, secret), "HTTP_X_GITHUB_EVENT": "pull_request"},
        "gitea": {
            "HTTP_X_GITEA_SIGNATURE": sign(body, secret).removeprefix("sha256="),
            "HTTP_X_GITEA_EVENT": "pull_request",
        },
        "gitlab": {"HTTP_X_GITLAB_TOKEN": secret, "HTTP_X_GITLAB_EVENT": "Merge Request Hook"},
        "generic": {"HTTP_X_SIGNATURE": sign(body, secret)},
    }[provider]
    return client.post(
        f"/api/v1/gitops/webhooks/{provider}/", body, content_type="application/json", **{**signature, **headers}
    )


def flux_synced(revision: str) -> dict:
    """What Flux's notification-controller (generic-hmac provider) posts when a Kustomization is applied."""
    return {
        "involvedObject": {"kind": "Kustomization", "name": "shop", "namespace": "flux-system"},
        "severity": "info",
        "reason": "ReconciliationSucceeded",
        "message": "Applied revision: main@sha1:" + revision,
        "metadata": {"revision": "main@sha1:" + revision},
    }


def test_a_deployment_commits_the_manifest_waits_for_the_sync_and_records_the_inventory(scene, client, celery_worker):
    scene.environment("prod")
    approvers = make_team(members=(scene.approver,))
    environment_grant(actor=None, environment=scene.environments["prod"], team=approvers, action="approve")
    policy_set(actor=None, environment=scene.environments["prod"], required_approvals=1, eligible_teams=[approvers])
    deployment = deploy(scene, "prod", "1.4.2")
    manifest = deployment.plan["steps"][0]["params"]["manifest"]
    assert 'image: "oci://registry.example.com/shop:1.4.2@sha256:' in manifest  # approvers see the exact file
    approve(actor=scene.approver, deployment=deployment, plan_digest=deployment.plan_digest)

    run = awaiting(deployment, "Awaiting sync of")
    commit = run.state["commit"]
    status = bearer_client(scene.deployer).get(f"/api/v1/deployments/{deployment.pk}/").json()["gitops"]
    assert status == [
        {
            "name": "Commit manifest",
            "url": str(scene.repo),
            "branch": "main",
            "path": "prod/shop.yaml",
            "phase": "awaiting_sync",
            "commit": commit,
            "revision": "",
            "pull_request": None,
            "pull_request_url": "",
        }
    ]
    assert run_git(scene.repo, "rev-parse", "main") == commit
    assert show(scene.repo, "main", "prod/shop.yaml") == manifest
    assert "replicas: 3" in manifest
    assert f"name: {scene.application.slug}" in manifest
    author = run_git(scene.repo, "log", "-1", "--format=%an <%ae>|%cn", "main")
    assert author == f"Dana Deployer <{scene.deployer.username}@example.com>|ReleaseHub"
    message = run_git(scene.repo, "log", "-1", "--format=%B", "main")
    assert message.splitlines()[0] == f"Deploy {scene.application.slug} 1.4.2 to {scene.environments['prod'].name}"
    assert f"Deployment: #{deployment.pk} http" in message
    assert f"Approved-by: Avery Approver <{scene.approver.username}@example.com>" in message
    assert f"Requested-by: Dana Deployer <{scene.deployer.username}@example.com>" in message
    assert TOKEN not in run.log
    assert WEBHOOK_SECRET not in run.log

    # The operator applied it: Flux reports the revision; the step ends, the inventory follows.
    answer = webhook(client, "generic", flux_synced(commit))
    assert answer.status_code == 202, answer.content
    assert answer.json()["deployments"] == [deployment.pk]
    deployment = wait_for(deployment, timeout=30)
    assert deployment.status == "succeeded", deployment.status_reason
    assert step_run(deployment).message == f"Synced: the operator applied {commit[:12]}."
    installed = current_installations(environment=scene.environments["prod"])
    assert [(i.target.name, i.artifact.version) for i in installed] == [("cluster-eu", "1.4.2")]
    event = AuditEvent.objects.get(verb="gitops.webhook_received")
    assert event.details["kind"] == "synced"
    assert event.details["deployments"] == [deployment.pk]

    # The same release again: the file holds it already, nothing is committed.
    again = deploy(scene, "prod", "1.4.2")
    assert again.status == "pending_approval"
    approve(actor=scene.approver, deployment=again, plan_digest=again.plan_digest)
    again = wait_for(again, timeout=30)
    assert again.status == "succeeded", again.status_reason
    assert step_run(again).message.startswith("Already at this version: prod/shop.yaml on main holds this manifest")
    assert run_git(scene.repo, "rev-list", "--count", "main") == "1"


def test_deployments_to_two_environments_sharing_a_repository_both_land(scene, celery_worker):
    template = gitops_template(wait_for_sync=False)
    scene.environment("eu")
    scene.environment("us")
    first, second = deploy(scene, "eu", "2.0.0", template), deploy(scene, "us", "2.0.0", template)
    for deployment in (first, second):
        deployment = wait_for(deployment, timeout=60)
        assert deployment.status == "succeeded", deployment.status_reason
    assert "2.0.0" in show(scene.repo, "main", "eu/shop.yaml")
    assert "2.0.0" in show(scene.repo, "main", "us/shop.yaml")
    assert run_git(scene.repo, "rev-list", "--count", "main") == "2"


def test_concurrent_pushes_to_one_branch_fetch_and_commit_again_never_force(tmp_path):
    repo = bare_repository(tmp_path / "shared.git")
    # Every push waits a second before the refs are updated, so two pushes made together race for main.
    hook = repo / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\nsleep 1\n")
    hook.chmod(0o755)
    git.commit_file(
        git.Remote(str(repo)),
        branch="main",
        path="README",
        content=b"shared\n",
        message="init",
        author=("A", "a@example.com"),
    )
    barrier, results, logs = threading.Barrier(2), {}, {"eu": [], "us": []}

    def commit(name: str) -> None:
        barrier.wait()
        results[name] = git.commit_file(
            git.Remote(str(repo)),
            branch="main",
            path=f"{name}/app.yaml",
            content=f"{name}\n".encode(),
            message=f"Deploy to {name}",
            author=("A", "a@example.com"),
            log=logs[name].append,
        )

    threads = [threading.Thread(target=commit, args=(name,)) for name in ("eu", "us")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result.changed for result in results.values())
    assert show(repo, "main", "eu/app.yaml") == "eu\n"
    assert show(repo, "main", "us/app.yaml") == "us\n"
    history = run_git(repo, "log", "--format=%s", "main").splitlines()
    assert sorted(history[:2]) == ["Deploy to eu", "Deploy to us"]
    assert history[2] == "init"
    retried = [line for lines in logs.values() for line in lines if "moved while committing" in line]
    assert len(retried) == 1, logs  # the loser fetched the winner's commit and committed on top of it


def test_a_pull_request_is_opened_and_a_signed_merge_webhook_closes_the_step(scene, provider, client, celery_worker):
    scene.environment(
        "stage", mode="pull_request", provider="github", api_url=provider.url, project="acme/environments"
    )
    deployment = deploy(scene, "stage", "3.1.0", gitops_template(wait_for_sync=False))
    run = awaiting(deployment, "Awaiting merge of pull request #1")
    pull = provider.pulls[1]["request"]
    assert pull["base"] == "main"
    assert pull["head"] == run.state["branch"]
    assert pull["head"].startswith(f"releasehub/deployment-{deployment.pk}-")
    assert pull["title"] == f"Deploy {scene.application.slug} 3.1.0 to {scene.environments['stage'].name}"
    assert "3.1.0" in show(scene.repo, pull["head"], "stage/shop.yaml")
    assert run_git(scene.repo, "branch", "--list", "main") == ""  # main untouched until the merge

    # Someone else's webhook secret: refused and audited, nothing changes.
    payload = {
        "action": "closed",
        "number": 1,
        "pull_request": {"number": 1, "merged": True, "merge_commit_sha": run.state["commit"]},
        "repository": {"full_name": "acme/environments"},
    }
    assert webhook(client, "github", payload, secret="not-the-secret").status_code == 401
    assert AuditEvent.objects.filter(verb="gitops.webhook_rejected", object_id="github").count() == 1
    assert webhook(client, "github", {**payload, "repository": {"full_name": "acme/other"}}).json()["deployments"] == []
    deployment.refresh_from_db()
    assert deployment.status == "running"

    answer = webhook(client, "github", payload)
    assert answer.status_code == 202
    assert answer.json() == {
        "provider": "github",
        "event": "pull_request.closed",
        "kind": "merged",
        "deployments": [deployment.pk],
    }
    deployment = wait_for(deployment, timeout=30)
    assert deployment.status == "succeeded", deployment.status_reason
    assert step_run(deployment).state["merged"] is True
    assert [call[0] for call in provider.calls] == ["POST"]  # no token: the webhook decided, nothing polled


def test_a_merge_request_closed_without_merging_fails_the_deployment(scene, provider, client, celery_worker):
    scene.environment("qa", mode="pull_request", provider="gitlab", api_url=provider.url, project="acme/envs")
    deployment = deploy(scene, "qa", "3.2.0")
    awaiting(deployment, "Awaiting merge of pull request #1")
    payload = {
        "object_kind": "merge_request",
        "project": {"path_with_namespace": "acme/envs"},
        "object_attributes": {"iid": 1, "action": "close", "state": "closed"},
    }
    assert webhook(client, "gitlab", payload, secret="wrong").status_code == 401
    assert webhook(client, "gitlab", payload).status_code == 202
    deployment = wait_for(deployment, timeout=30)
    assert deployment.status == "failed"
    assert "Pull request #1 was closed without being merged." in deployment.status_reason


def test_polling_reads_the_pull_request_and_the_health_url(scene, provider, celery_worker):
    scene.environment(
        "live",
        mode="pull_request",
        provider="gitea",
        api_url=provider.url,
        project="acme/envs",
        api_token_variable="GIT_TOKEN",
        health_url=f"{provider.url}/health",
        poll_interval=5,
    )
    deployment = deploy(scene, "live", "4.0.0")
    run = awaiting(deployment, "Awaiting merge of pull request #1")
    provider.pulls[1].update(state="merged", merge_commit=run.state["commit"])
    run = awaiting(deployment, "Awaiting sync of", timeout=40)
    get = next(call for call in provider.calls if call[0] == "GET" and "/pulls/1" in call[1])
    assert get[1] == "/api/v1/repos/acme/envs/pulls/1"
    assert get[2]["Authorization"] == f"token {TOKEN}"
    provider.health = '{"version": "4.0.0"}'
    deployment = wait_for(deployment, timeout=40)
    assert deployment.status == "succeeded", deployment.status_reason
    assert step_run(deployment).message == f"Synced: {provider.url}/health shows version 4.0.0."


def test_rolling_back_puts_the_previous_manifest_back(scene, celery_worker):
    from apps.deployments.services import deployment_resume, deployment_rollback

    steps = [
        {"name": "Commit manifest", "kind": "gitops_commit", "params": {"wait_for_sync": False}},
        {"name": "Check", "kind": "manual_intervention", "params": {"instructions": "Check the cluster."}},
    ]
    template = template_create(actor=None, slug=unique("judged"), name="Judged", steps=steps)
    scene.environment("prod")
    first = wait_for(deploy(scene, "prod", "1.0.0", template), statuses={"paused"})
    deployment_resume(actor=scene.deployer, deployment=first)
    assert wait_for(first).status == "succeeded"
    before = show(scene.repo, "main", "prod/shop.yaml")

    second = wait_for(deploy(scene, "prod", "2.0.0", template), statuses={"paused"})
    assert "2.0.0" in show(scene.repo, "main", "prod/shop.yaml")
    deployment_rollback(actor=scene.deployer, deployment=second)
    second = wait_for(second)
    assert second.status == "rolled_back", second.status_reason
    assert show(scene.repo, "main", "prod/shop.yaml") == before
    assert run_git(scene.repo, "log", "-1", "--format=%s", "main") == (
        f"Roll back {scene.application.slug} 2.0.0 on {scene.environments['prod'].name}"
    )
    undo = StepRun.objects.get(deployment=second, action="rollback")
    assert undo.message.startswith("Restored the previous prod/shop.yaml in ")


def test_an_https_credential_is_sent_as_a_header_and_never_shown(scene, git_http, celery_worker):
    from apps.environments.models import Variable
    from apps.environments.services import variable_update

    template = gitops_template(wait_for_sync=False)
    url = f"{git_http.url}/environments.git"
    scene.environment("edge", url=url, credential_variable="GIT_TOKEN")
    deployment = wait_for(deploy(scene, "edge", "5.0.0", template))
    assert deployment.status == "succeeded", deployment.status_reason
    assert "5.0.0" in show(scene.repo, "main", "edge/shop.yaml")
    assert set(git_http.authorizations) == {"Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()}
    assert TOKEN not in step_run(deployment).log

    # A token the server refuses: the step fails, saying so, without the token.
    variable = Variable.objects.get(environment=scene.environments["edge"], name="GIT_TOKEN")
    variable_update(actor=None, variable=variable, value="ghp_revoked-token")
    failed = wait_for(deploy(scene, "edge", "5.0.1", template))
    assert failed.status == "failed"
    assert "git fetch failed" in failed.status_reason
    assert "ghp_revoked-token" not in failed.status_reason + step_run(failed).log


def test_an_ssh_repository_is_reached_with_a_deploy_key_and_its_host_key_checked(scene, sshd, tmp_path, celery_worker):
    template = gitops_template(wait_for_sync=False)
    environment = scene.environment("dc")
    make_variable(environment, "DEPLOY_KEY", sshd.private_key, secret=True)
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{scene.repo}"
    repository_set(
        actor=None, environment=environment, url=url, credential_variable="DEPLOY_KEY", ssh_known_hosts=sshd.known_hosts
    )
    deployment = wait_for(deploy(scene, "dc", "6.0.0", template))
    assert deployment.status == "succeeded", deployment.status_reason
    assert "6.0.0" in show(scene.repo, "main", "dc/shop.yaml")
    assert "PRIVATE KEY" not in step_run(deployment).log

    # Another host key than the one given: ssh refuses to talk, nothing is pushed.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join([sshd.known_hosts.split()[0], *(tmp_path / "other.pub").read_text().split()[:2]])
    repository_set(actor=None, environment=environment, ssh_known_hosts=other)
    refused = wait_for(deploy(scene, "dc", "6.0.1", template))
    assert refused.status == "failed"
    assert "Host key verification failed" in refused.status_reason
    assert "6.0.0" in show(scene.repo, "main", "dc/shop.yaml")


def test_a_failed_sync_rolls_the_commit_back_when_the_deployment_says_so(scene, client, celery_worker):
    scene.environment("prod")
    assert wait_for(deploy(scene, "prod", "1.0.0", gitops_template(wait_for_sync=False))).status == "succeeded"
    before = show(scene.repo, "main", "prod/shop.yaml")
    deployment = deployment_create(
        actor=scene.deployer,
        release=scene.release("2.0.0"),
        environment=scene.environments["prod"],
        template=scene.template,
        strategy_options={"rollback_on_failure": True},
    )
    commit = awaiting(deployment, "Awaiting sync of").state["commit"]
    failed = {"status": "degraded", "revision": commit, "message": "CrashLoopBackOff"}
    assert webhook(client, "generic", failed).json()["deployments"] == [deployment.pk]
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert "The operator reported a failed sync of" in deployment.status_reason
    assert show(scene.repo, "main", "prod/shop.yaml") == before  # the operator goes back to 1.0.0


def test_a_retry_after_the_sync_timed_out_waits_again(scene, client, celery_worker):
    from apps.deployments.services import deployment_retry

    scene.environment("prod", sync_timeout=10, poll_interval=5)
    deployment = wait_for(deploy(scene, "prod", "1.0.0"), timeout=60)
    assert deployment.status == "failed"
    assert "still not done when the sync timeout ran out" in deployment.status_reason
    commit = step_run(deployment).state["commit"]
    deployment_retry(actor=scene.deployer, deployment=deployment)
    run = awaiting(deployment, "Awaiting sync of")  # the same commit, a new wait: nothing committed again
    assert run.state["commit"] == commit
    assert run_git(scene.repo, "rev-list", "--count", "main") == "1"
    assert webhook(client, "generic", {"status": "synced", "revision": commit}).status_code == 202
    assert wait_for(deployment).status == "succeeded"


def test_a_symbolic_link_in_the_repository_is_never_followed(tmp_path):
    """The worker writes nothing outside git: a link where the file's folder should be is refused."""
    repo = bare_repository(tmp_path / "links.git")
    work, outside = tmp_path / "work", tmp_path / "outside"
    outside.mkdir()
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(work)], check=True)
    (work / "apps").symlink_to(outside)
    for args in (["add", "-A"], ["-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "link"]):
        run_git(work, *args)
    run_git(work, "push", "--quiet", str(repo), "main")
    remote = git.Remote(str(repo))
    with pytest.raises(git.GitError, match=r"apps/web\.yaml' appears as both a file and as a directory"):
        git.commit_file(remote, branch="main", path="apps/web.yaml", content=b"x\n", message="m", author=("A", "a@x"))
    with pytest.raises(git.GitError, match="apps is not a regular file in the repository"):
        git.commit_file(remote, branch="main", path="apps", content=b"x\n", message="m", author=("A", "a@x"))
    assert list(outside.iterdir()) == []
