"""An environment's GitOps tab: push or pull mode for viewers; the repository form and its removal for managers."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.template.loader import render_to_string
from django.test import Client

from apps.accounts.services import team_add_member
from apps.audit.models import AuditEvent
from apps.deployments.engine import runner
from apps.deployments.models import StepRun
from apps.deployments.services import deployment_create, start_next_queued
from apps.environments.services import environment_grant
from apps.gitops.cards import gitops_cards, phase_of
from apps.gitops.models import EnvironmentRepository
from apps.gitops.services import repository_set
from tests.factories import make_environment, make_team, make_user, make_variable

pytestmark = pytest.mark.django_db

MANIFEST = "image: registry.example.com/shop:{{ release.version }}\nreplicas: {{ var.REPLICAS }}\n"


@pytest.fixture
def setup():
    """An environment owned by the managers' team (view, deploy, book, manage), viewed by another team, with a
    secret and a plain variable."""
    manager, viewer = make_user(), make_user()
    owners = make_team(members=(manager,))
    viewers = make_team(members=(viewer,))
    environment = make_environment(owners, "shop-prod", name="Shop production", tier="production")
    environment_grant(actor=None, environment=environment, team=viewers, action="view")
    make_variable(environment, "GIT_TOKEN", "ghp_secret-value", secret=True)
    make_variable(environment, "HOOK_SECRET", "hook-secret-value", secret=True)
    make_variable(environment, "REPLICAS", "3")
    return {"environment": environment, "manager": manager, "viewer": viewer}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**overrides) -> dict:
    data = {
        "url": "https://git.example.com/platform/env-prod.git",
        "branch": "main",
        "path": "apps/shop/values.yaml",
        "manifest_template": MANIFEST,
        "mode": "push",
        "credential_variable": "GIT_TOKEN",
        "provider": "",
        "api_url": "",
        "project": "",
        "api_token_variable": "",
        "webhook_secret_variable": "HOOK_SECRET",
        "health_url": "",
        "sync_timeout": "3600",
        "poll_interval": "30",
    }
    return {**data, **overrides}


def field_errors(html: str, field: str) -> str:
    """The field's error messages: what follows its widget up to its help text."""
    after = html.split(f'id="id_{field}"', 1)[1]
    return after.split('<div class="form-text"', 1)[0]


def test_viewers_see_push_mode_then_the_repository_without_a_form(setup):
    environment, viewer = setup["environment"], setup["viewer"]
    client = client_of(viewer)
    url = "/environments/shop-prod/gitops/"
    html = client.get(url).content.decode()
    assert 'data-testid="gitops-tab"' in html
    assert 'aria-current="page" href="/environments/shop-prod/gitops/"' in html
    assert 'data-mode="push"' in html
    assert "Shop production is in push mode." in html
    assert "see the GitOps guide" in html
    assert 'data-testid="gitops-form"' not in html
    assert "Remove repository" not in html

    repository_set(
        actor=None,
        environment=environment,
        url="https://git.example.com/platform/env-prod.git",
        branch="release",
        path="apps/shop/values.yaml",
        manifest_template=MANIFEST + "# <script>alert(1)</script>\n",
        mode="pull_request",
        provider="github",
        credential_variable="GIT_TOKEN",
        webhook_secret_variable="HOOK_SECRET",
        health_url="https://shop.example.com/version",
        sync_timeout=900,
        poll_interval=15,
    )
    html = client.get(url).content.decode()
    assert 'data-mode="pull"' in html
    assert "Open a pull request" in html
    assert "https://git.example.com/platform/env-prod.git" in html
    assert "apps/shop/values.yaml" in html
    assert "https://api.github.com" in html
    assert "platform/env-prod" in html
    secrets = html.split('data-testid="gitops-secrets"')[1].split("</dd>")[0]
    assert "GIT_TOKEN" in secrets
    assert "HOOK_SECRET" in secrets
    assert "ghp_secret-value" not in html
    assert "hook-secret-value" not in html
    assert "https://shop.example.com/version" in html
    timing = html.split('data-testid="gitops-timing"')[1].split("</dd>")[0]
    assert "15 minutes" in timing
    assert "15 seconds" in timing
    assert "GitHub" in html.split('data-testid="gitops-provider"')[1].split("</dd>")[0]
    template = html.split('data-testid="gitops-template"')[1].split("</pre>")[0]
    assert "{{ release.version }}" in template
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in template
    assert 'data-testid="gitops-form"' not in html

    assert client.post(url, form_data()).status_code == 403
    assert client.get(f"{url}remove/").status_code == 403
    assert client.post(f"{url}remove/").status_code == 403
    assert EnvironmentRepository.objects.get(environment=environment).branch == "release"

    outsider = client_of(make_user())
    assert outsider.get(url).status_code == 404
    assert outsider.post(url, form_data()).status_code == 404


def test_a_manager_sets_changes_and_removes_the_repository(setup):
    environment, manager = setup["environment"], setup["manager"]
    client = client_of(manager)
    url = "/environments/shop-prod/gitops/"
    html = client.get(url).content.decode()
    assert 'data-testid="gitops-form"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    credential = html.split('id="id_credential_variable"')[1].split("</select>")[0]
    assert "GIT_TOKEN" in credential
    assert "HOOK_SECRET" in credential
    assert "REPLICAS" not in credential  # only secret variables are offered

    response = client.post(url, form_data(manifest_template=MANIFEST.replace("\n", "\r\n")), follow=True)
    assert response.redirect_chain == [(url, 302)]
    html = response.content.decode()
    assert "Shop production is in pull mode now" in html
    repository = EnvironmentRepository.objects.get(environment=environment)
    assert repository.credential_variable == "GIT_TOKEN"
    assert repository.manifest_template == MANIFEST  # LF line ends, as committed
    created = AuditEvent.objects.get(verb="gitops.repository_created")
    assert created.actor_name == manager.username
    assert created.channel == "ui"
    assert created.object_id == str(environment.pk)

    # The form comes back filled in; a change is saved and audited with its diff.
    html = client.get(url).content.decode()
    assert 'value="apps/shop/values.yaml"' in html
    assert 'value="GIT_TOKEN" selected' in html
    response = client.post(url, form_data(branch="production", poll_interval="60"), follow=True)
    assert "Repository settings of Shop production saved." in response.content.decode()
    repository.refresh_from_db()
    assert (repository.branch, repository.poll_interval) == ("production", 60)
    updated = AuditEvent.objects.get(verb="gitops.repository_updated")
    assert updated.details["changes"]["branch"] == ["main", "production"]
    response = client.post(url, form_data(branch="production", poll_interval="60"), follow=True)
    assert "Nothing changed." in response.content.decode()
    assert AuditEvent.objects.filter(verb="gitops.repository_updated").count() == 1

    # Removing asks first, then puts the environment back in push mode.
    confirm = client.get(f"{url}remove/").content.decode()
    assert "Remove the repository of Shop production?" in confirm
    assert 'data-testid="gitops-remove-submit"' in confirm
    assert EnvironmentRepository.objects.filter(environment=environment).exists()
    response = client.post(f"{url}remove/", follow=True)
    assert response.redirect_chain == [(url, 302)]
    html = response.content.decode()
    assert "Shop production is in push mode again" in html
    assert 'data-mode="push"' in html
    assert not EnvironmentRepository.objects.filter(environment=environment).exists()
    deleted = AuditEvent.objects.get(verb="gitops.repository_deleted")
    assert deleted.actor_name == manager.username
    assert deleted.details == {"url": "https://git.example.com/platform/env-prod.git"}
    # Nothing left to remove: back to the tab with a note.
    response = client.get(f"{url}remove/", follow=True)
    assert "has no repository: it is in push mode" in response.content.decode()


def test_domain_errors_land_next_to_their_fields(setup):
    environment, manager = setup["environment"], setup["manager"]
    client = client_of(manager)
    url = "/environments/shop-prod/gitops/"

    # The service's checks: the path (model validator), the provider pull requests need, the template's syntax.
    response = client.post(url, form_data(path="../outside.yaml", mode="pull_request"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "without &#x27;..&#x27;" in field_errors(html, "path")
    assert "is-invalid" in html.split('id="id_path"')[0].rsplit("<input", 1)[1]
    assert "Pull requests need a provider" in field_errors(html, "provider")
    assert 'value="../outside.yaml"' in html  # what was typed comes back
    assert not EnvironmentRepository.objects.filter(environment=environment).exists()

    response = client.post(url, form_data(manifest_template="{{ oops"))
    html = response.content.decode()
    assert "The repository settings are not valid." in html
    assert "invalid-feedback" in field_errors(html, "manifest_template")

    # Only secret variables may be named: a plain variable is not offered, so it is not accepted either.
    html = client.post(url, form_data(credential_variable="REPLICAS")).content.decode()
    assert "Select a valid choice" in field_errors(html, "credential_variable")

    # A name saved earlier that is no longer a secret variable here: shown, and the service names the problem.
    repository_set(actor=None, environment=environment, **{**form_data(), "sync_timeout": 3600, "poll_interval": 30})
    EnvironmentRepository.objects.filter(environment=environment).update(credential_variable="OLD_TOKEN")
    html = client.get(url).content.decode()
    assert 'data-testid="gitops-secret-missing"' in html
    html = client.post(url, form_data(credential_variable="OLD_TOKEN", branch="next")).content.decode()
    assert "Shop production has no secret variable OLD_TOKEN." in field_errors(html, "credential_variable")

    html = client.post(url, form_data(sync_timeout="3", poll_interval="0")).content.decode()
    assert "Between 10 seconds and 7 days." in field_errors(html, "sync_timeout")
    assert "Between 5 seconds and an hour." in field_errors(html, "poll_interval")
    assert AuditEvent.objects.filter(verb="gitops.repository_updated").count() == 0


def test_removal_is_refused_while_a_deployment_is_active(scene):
    """A deployment in progress keeps the repository: the page says why; nothing is removed."""
    environment = scene.environment("prod")
    deployment = deployment_create(
        actor=scene.deployer, release=scene.release("2.0.0"), environment=environment, template=scene.template
    )
    with transaction.atomic():
        start_next_queued(environment.pk)
    deployment.refresh_from_db()
    assert deployment.status == "running"
    response = client_of(scene.deployer).post(f"/environments/{environment.slug}/gitops/remove/", follow=True)
    assert "in progress; remove the repository after it." in response.content.decode()
    assert EnvironmentRepository.objects.filter(environment=environment).exists()


def test_the_member_of_a_team_with_manage_sees_the_form(setup):
    """`manage` granted to another team counts the same as the owner team's."""
    environment = setup["environment"]
    admins = make_team()
    admin = make_user()
    team_add_member(actor=None, team=admins, user=admin)
    environment_grant(actor=None, environment=environment, team=admins, action="manage")
    html = client_of(admin).get("/environments/shop-prod/gitops/").content.decode()
    assert 'data-testid="gitops-form"' in html


# --- The deployment page's GitOps card ------------------------------------------------------------------


def run_of(status: str, message: str = "", **state) -> StepRun:
    return StepRun(kind="gitops_commit", action="deploy", phase=0, step=0, status=status, message=message, state=state)


@pytest.mark.parametrize(
    ("run", "phase"),
    [
        (None, "not_started"),
        (run_of("running"), "committing"),
        (run_of("waiting", "Awaiting merge of pull request #4: u", commit="a" * 40, pull_request=4), "awaiting_merge"),
        (run_of("waiting", "Awaiting sync", commit="a" * 40, pull_request=4, merged=True), "awaiting_sync"),
        (run_of("waiting", "Awaiting sync of aaaa on main.", commit="a" * 40), "awaiting_sync"),
        (run_of("succeeded", "Synced: the operator applied aaaa.", commit="a" * 40, outcome="synced"), "synced"),
        (run_of("succeeded", "Already at this version: x on main", outcome="unchanged"), "unchanged"),
        (run_of("succeeded", "Committed aaaa; not waiting.", commit="a" * 40, outcome="committed"), "committed"),
        (
            run_of("failed", "Pull request #4 was closed without being merged.", pull_request=4, outcome="closed"),
            "closed",
        ),
        (run_of("failed", "The operator reported a failed sync of aaaa: boom", outcome="sync_failed"), "failed"),
        (run_of("paused"), "paused"),
    ],
)
def test_the_phase_follows_the_step_runs_status_and_state(run, phase):
    assert phase_of(run) == phase


def test_the_deployment_page_shows_the_commit_the_phase_and_the_planned_manifest(scene, client):
    """Push to main, awaiting the operator's sync (no worker: the engine runs in this process)."""
    environment = scene.environment("prod")
    deployment = deployment_create(
        actor=scene.deployer, release=scene.release("2.0.0"), environment=environment, template=scene.template
    )
    client.force_login(scene.deployer)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    card = page.split('data-testid="gitops-card"')[1].split("</section>")[0]
    assert 'data-phase="not_started"' in page
    assert str(scene.repo) in card
    assert "main:prod/shop.yaml" in card
    assert "registry.example.com/shop:2.0.0" in card  # the manifest, from the plan

    for _ in range(20):
        runner.advance(deployment.pk)
        run = StepRun.objects.filter(deployment=deployment, kind="gitops_commit").first()
        if run and run.status == "waiting":
            break
    assert run.message.startswith("Awaiting sync of")
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-phase="awaiting_sync"' in page
    assert f">{run.state['commit'][:12]}</code>" in page
    assert "Awaiting sync" in page.split('data-testid="gitops-phase"')[1].split("</span>")[0]
    progress = client.get(f"/deployments/{deployment.pk}/progress/").content.decode()  # the polled part has it too
    assert 'data-phase="awaiting_sync"' in progress


def test_the_card_links_the_pull_request_and_says_when_it_was_closed_without_merging():
    repository = {"url": "https://git.example.com/acme/envs.git", "branch": "main", "path": "shop.yaml"}
    plan = {
        "steps": [
            {"name": "Wait", "kind": "wait", "params": {}},
            {
                "name": "Commit manifest",
                "kind": "gitops_commit",
                "params": {"repository": {**repository, "mode": "pull_request"}, "manifest": "version: 2\n"},
            },
        ]
    }
    state = {"commit": "c" * 40, "branch": "releasehub/deployment-7-cccccccc", "pull_request": 12}
    waiting = run_of("waiting", "Awaiting merge of pull request #12", **state, pull_request_url="https://x/pull/12")
    waiting.step = 1
    html = render_to_string("deployments/_gitops.html", {"gitops": gitops_cards(plan, [waiting])})
    assert html.count('data-testid="gitops-card"') == 1
    assert 'data-phase="awaiting_merge"' in html
    assert '<a href="https://x/pull/12"' in html
    assert "#12" in html
    assert "releasehub/deployment-7-cccccccc" in html
    assert "version: 2" in html

    closed = run_of("failed", "Pull request #12 was closed without being merged.", **state, outcome="closed")
    closed.step, closed.state["pull_request_url"] = 1, "javascript:alert(1)"
    html = render_to_string("deployments/_gitops.html", {"gitops": gitops_cards(plan, [closed])})
    assert "Closed without merging" in html
    assert "javascript:" not in html  # only http(s) links
    assert gitops_cards({"steps": [{"name": "Run", "kind": "shell", "params": {}}]}, []) == []
