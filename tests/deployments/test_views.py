"""Deployment pages: the list, one deployment (progress, plan, history, step logs) and its controls, and the
template pages, for deployers, viewers and strangers.

Deployments are created through the services and advanced by the real engine, one unit of work
at a time (apps.deployments.engine.runner.advance), in the test process: shell steps really run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.services import application_grant
from apps.deployments.engine import runner
from apps.deployments.models import Deployment, DeploymentTemplate, StepRun
from apps.deployments.services import deployment_create, template_create
from apps.environments.services import environment_grant
from apps.releases.services import release_create
from tests.factories import (
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    make_variable,
    register,
    unique,
)

SECRET = "hunter2-do-not-show-ZX81"
ECHO = [
    {"name": "Prepare", "kind": "shell", "params": {"command": "echo preparing {{ target.name }}"}},
    {"name": "Install", "kind": "shell", "params": {"command": "echo installing {{ release.version }}"}},
]
PAUSING = [
    {"name": "Install", "kind": "shell", "params": {"command": "echo installing"}},
    {"name": "Smoke test by hand", "kind": "manual_intervention", "params": {"instructions": "Click around."}},
]


@dataclass
class Stage:
    """An environment with targets, an application with releases 1.0.0 and 2.0.0, a template; `deployer`
    belongs to the owner team (view, deploy...), `viewer` may only view, `stranger` sees nothing."""

    environment: object
    application: object
    template: DeploymentTemplate
    deployer: object
    viewer: object
    stranger: object
    releases: dict = field(default_factory=dict)

    def deploy(self, version: str = "1.0.0", **options) -> Deployment:
        options.setdefault("template", self.template)
        return deployment_create(
            actor=self.deployer, release=self.releases[version], environment=self.environment, **options
        )


def make_stage(targets: int = 2, steps: list[dict] | None = None, *, secret: bool = False) -> Stage:
    deployer, viewer, stranger = make_user(unique("dora")), make_user(unique("vic")), make_user(unique("sid"))
    team, viewers = make_team(members=(deployer,)), make_team(members=(viewer,))
    make_team(members=(stranger,))
    environment = make_environment(team, tier="staging")
    environment_grant(actor=None, environment=environment, team=viewers, action="view")
    for index in range(1, targets + 1):
        make_target(environment, f"web-{index}")
    if secret:
        make_variable(environment, "DB_PASSWORD", SECRET, secret=True)
    application = make_application(team)
    application_grant(actor=None, application=application, team=viewers, action="view")
    template = template_create(actor=None, slug=unique("tpl"), name="Echo deploy", steps=steps or ECHO)
    stage = Stage(environment, application, template, deployer, viewer, stranger)
    for version in ("1.0.0", "2.0.0"):
        artifact = register(application, version, by=deployer)
        stage.releases[version] = release_create(actor=None, application=application, artifacts=[artifact])
    return stage


def run(deployment: Deployment, *, until=("succeeded", "failed", "paused", "cancelled", "rolled_back")) -> Deployment:
    """Advance the deployment unit by unit in this process until it reaches one of `until`."""
    for _ in range(100):
        deployment.refresh_from_db()
        if deployment.status in until:
            return deployment
        runner.advance(deployment.pk)
    raise AssertionError(f"{deployment} still {deployment.status}")


def html(response) -> str:
    return response.content.decode()


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.fixture
def stage(db) -> Stage:
    return make_stage()


# --- List ----------------------------------------------------------------------------------------------


def test_the_list_shows_visible_deployments_with_their_release_environment_and_status(client, stage):
    first = run(stage.deploy("1.0.0"))
    second = stage.deploy("2.0.0")
    client.force_login(stage.deployer)
    page = html(client.get("/deployments/"))
    assert f'href="/deployments/{first.pk}/"' in page
    assert f'href="/deployments/{second.pk}/"' in page
    assert f'href="/releases/{stage.releases["1.0.0"].pk}/"' in page
    assert f'href="/environments/{stage.environment.slug}/"' in page
    assert 'data-status="succeeded"' in page
    assert 'data-status="running"' in page
    assert stage.deployer.username in page
    assert 'aria-current="page" href="/deployments/"' in page  # the main navigation marks the section

    client.force_login(stage.stranger)
    page = html(client.get("/deployments/"))
    assert 'data-testid="empty-state"' in page
    assert "No deployments visible to you yet" in page
    assert f'href="/deployments/{first.pk}/"' not in page


def test_the_list_filters_by_environment_application_status_and_release(client, stage):
    other = make_stage()
    done = run(stage.deploy("1.0.0"))
    running = stage.deploy("2.0.0")
    elsewhere = other.deploy("1.0.0")
    admin = make_user(unique("root"), is_staff=True, is_superuser=True)
    client.force_login(admin)

    def listed(query: str) -> set[int]:
        table = html(client.get(f"/deployments/?{query}")).split('data-testid="deployment-table"')[1]
        return {int(pk) for pk in re.findall(r'href="/deployments/(\d+)/"', table.split("</table>")[0])}

    assert listed("") >= {done.pk, running.pk, elsewhere.pk}
    assert listed(f"environment={stage.environment.slug}") == {done.pk, running.pk}
    assert listed(f"application={other.application.slug}") == {elsewhere.pk}
    assert listed(f"environment={stage.environment.slug}&status=succeeded") == {done.pk}
    assert listed(f"release={stage.releases['2.0.0'].pk}") == {running.pk}
    assert "No deployment matches these filters" in html(client.get("/deployments/?status=paused"))
    assert client.get("/deployments/?status=bogus").status_code == 200  # a bad filter value is shown, not a 500


def test_the_filter_form_gets_only_the_results_through_htmx(client, stage):
    stage.deploy()
    client.force_login(stage.deployer)
    response = client.get(f"/deployments/?environment={stage.environment.slug}", HTTP_HX_REQUEST="true")
    assert 'data-testid="deployment-table"' in html(response)
    assert "<html" not in html(response)


def test_the_list_runs_the_same_queries_for_5_and_40_deployments(client, stage, django_assert_max_num_queries):
    client.force_login(stage.deployer)
    for _ in range(5):
        stage.deploy()
    with_5 = queries(client, "/deployments/")
    for _ in range(35):
        stage.deploy("2.0.0")
    with django_assert_max_num_queries(with_5):
        page = html(client.get("/deployments/"))
    assert len(re.findall(r'<a class="fw-semibold" href="/deployments/\d+/"', page)) == 40
    assert queries(client, f"/deployments/?environment={stage.environment.slug}&status=queued") == with_5


# --- One deployment ------------------------------------------------------------------------------------


def test_the_detail_page_shows_status_details_and_progress_per_phase_target_and_step(client, db):
    stage = make_stage(targets=3)
    deployment = run(stage.deploy(strategy="rolling", strategy_options={"batch_size": 2}))
    client.force_login(stage.viewer)
    page = html(client.get(f"/deployments/{deployment.pk}/"))
    assert "Deployment #" in page
    assert 'data-status="succeeded"' in page
    assert f"v{deployment.template_version.number}" in page
    assert deployment.plan_digest[:12] in page
    assert f'title="sha256 {deployment.plan_digest}"' in page
    assert page.count('data-testid="phase"') == 2  # batches of 2 and 1 targets
    for name in ("web-1", "web-2", "web-3"):
        assert name in page
    # Prepare, Install and the (skipped) health gate, on each of 3 targets.
    assert page.count('data-testid="step-run"') == 9
    assert "9 of 9 steps done" in page
    run_ids = StepRun.objects.filter(deployment=deployment).values_list("pk", flat=True)
    for pk in run_ids:
        assert f"/deployments/{deployment.pk}/runs/{pk}/log/" in page
    assert 'hx-trigger="every 2s"' not in page  # ended: nothing polls


def test_the_progress_fragment_polls_until_the_deployment_ends(client, stage):
    deployment = stage.deploy()
    client.force_login(stage.deployer)
    fragment = html(client.get(f"/deployments/{deployment.pk}/progress/", HTTP_HX_REQUEST="true"))
    assert fragment.strip().startswith('<div id="deployment-live"')
    assert f'hx-get="/deployments/{deployment.pk}/progress/" hx-trigger="every 2s"' in fragment
    assert 'data-status="running"' in fragment
    assert "not started" in fragment
    run(deployment)
    fragment = html(client.get(f"/deployments/{deployment.pk}/progress/", HTTP_HX_REQUEST="true"))
    assert 'data-live="false"' in fragment
    assert "hx-trigger" not in fragment.strip().split(">")[0]
    assert 'data-status="succeeded"' in fragment
    # The page the fragment replaces polls too, while running.
    other = stage.deploy("2.0.0")
    assert 'hx-trigger="every 2s"' in html(client.get(f"/deployments/{other.pk}/"))


def test_an_invisible_deployment_is_a_404_on_every_page(client, stage):
    deployment = run(stage.deploy())
    step_run = StepRun.objects.filter(deployment=deployment).first()
    client.force_login(stage.stranger)
    for path in ("", "progress/", "plan/", "history/", f"runs/{step_run.pk}/log/"):
        assert client.get(f"/deployments/{deployment.pk}/{path}").status_code == 404, path
    for action in ("cancel", "resume", "retry", "rollback"):
        assert client.post(f"/deployments/{deployment.pk}/{action}/").status_code == 404, action
    assert client.get("/deployments/999999/").status_code == 404
    client.logout()
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 302  # to the sign-in page


def test_a_run_of_another_deployment_is_a_404(client, stage):
    first, second = run(stage.deploy()), run(stage.deploy("2.0.0"))
    foreign = StepRun.objects.filter(deployment=second).first()
    client.force_login(stage.deployer)
    assert client.get(f"/deployments/{first.pk}/runs/{foreign.pk}/log/").status_code == 404


def test_detail_and_progress_run_constant_queries_as_targets_and_step_runs_grow(
    client, db, django_assert_max_num_queries
):
    small, large = make_stage(targets=1), make_stage(targets=8)
    small_run = run(small.deploy())
    large_run = run(large.deploy(strategy="rolling", strategy_options={"batch_size": 2}))
    assert StepRun.objects.filter(deployment=large_run).count() == 24
    admin = make_user(unique("root"), is_staff=True, is_superuser=True)
    client.force_login(admin)
    for suffix in ("", "progress/", "plan/", "history/"):
        baseline = queries(client, f"/deployments/{small_run.pk}/{suffix}")
        with django_assert_max_num_queries(baseline):
            client.get(f"/deployments/{large_run.pk}/{suffix}")
    # While it runs, too: a few runs done, or many.
    small_live = small.deploy("2.0.0")
    large_live = large.deploy("2.0.0", strategy="rolling", strategy_options={"batch_size": 2})
    runner.advance(small_live.pk)
    for _ in range(5):
        runner.advance(large_live.pk)
    large_live.refresh_from_db()
    assert (large_live.status, large_live.phase) == ("running", 1)
    baseline = queries(client, f"/deployments/{small_live.pk}/progress/")
    with django_assert_max_num_queries(baseline):
        client.get(f"/deployments/{large_live.pk}/progress/")


def test_the_log_fragment_escapes_what_the_step_printed(client, db):
    stage = make_stage(
        targets=1,
        steps=[{"name": "Noisy", "kind": "shell", "params": {"command": "echo '<script>alert(1)</script> & done'"}}],
    )
    deployment = run(stage.deploy())
    step_run = StepRun.objects.get(deployment=deployment, name="Noisy")
    client.force_login(stage.deployer)
    fragment = html(client.get(f"/deployments/{deployment.pk}/runs/{step_run.pk}/log/", HTTP_HX_REQUEST="true"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in fragment
    assert "<script>alert(1)" not in fragment
    assert 'data-testid="run-log-text"' in fragment
    assert "Noisy" in fragment
    assert "web-1" in fragment
    assert "hx-trigger" not in fragment  # the step ended: the log no longer refreshes


def test_secrets_appear_only_as_masked_references_in_the_plan_and_logs(client, db):
    stage = make_stage(
        targets=1,
        steps=[{"name": "Connect", "kind": "shell", "params": {"command": "echo password={{ var.DB_PASSWORD }}"}}],
        secret=True,
    )
    deployment = run(stage.deploy())
    client.force_login(stage.deployer)
    plan = html(client.get(f"/deployments/{deployment.pk}/plan/"))
    assert 'data-testid="secret-ref"' in plan
    assert "DB_PASSWORD" in plan
    assert "⟦secret:" not in plan  # a reference is drawn as a badge, never as raw text
    assert "echo password=" in plan
    step_run = StepRun.objects.get(deployment=deployment, name="Connect")
    pages = [
        plan,
        html(client.get(f"/deployments/{deployment.pk}/")),
        html(client.get(f"/deployments/{deployment.pk}/history/")),
        html(client.get(f"/deployments/{deployment.pk}/runs/{step_run.pk}/log/")),
    ]
    assert "password=••••••••" in pages[-1]
    for page in pages:
        assert SECRET not in page


def test_the_plan_tab_shows_strategy_phases_steps_and_rendered_parameters_per_target(client, db):
    stage = make_stage(targets=2)
    deployment = stage.deploy(strategy="rolling", strategy_options={"batch_size": 1, "pause_seconds": 5})
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{deployment.pk}/plan/"))
    assert f'aria-current="page" href="/deployments/{deployment.pk}/plan/"' in page
    assert "Rolling" in page
    assert "pause_seconds" in page
    assert "batch_size" in page
    assert "Batch 1</strong>: web-1" in page
    assert "Batch 2</strong>: web-2" in page
    assert "echo preparing web-1" in page
    assert "echo preparing web-2" in page
    assert "echo installing 1.0.0" in page
    assert "Skipped on this target (no health check URL)." in page
    assert deployment.plan_digest in page


def test_the_history_tab_lists_the_status_changes(client, stage):
    deployment = run(stage.deploy())
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{deployment.pk}/history/"))
    assert 'data-testid="history-table"' in page
    assert "running" in page
    assert "succeeded" in page
    assert f"object_type=deployments.deployment&amp;object_id={deployment.pk}" in page


# --- Controls ------------------------------------------------------------------------------------------


def test_a_deployer_cancels_a_queued_deployment(client, stage):
    stage.deploy()
    queued = stage.deploy("2.0.0")
    assert queued.status == "queued"
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{queued.pk}/"))
    assert f'action="/deployments/{queued.pk}/cancel/" data-confirm=' in page
    response = client.post(f"/deployments/{queued.pk}/cancel/", follow=True)
    assert response.redirect_chain[-1][0] == f"/deployments/{queued.pk}/"
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    page = html(response)
    assert f"Deployment #{queued.pk} cancelled." in page
    assert 'data-status="cancelled"' in page
    assert "/cancel/" not in page  # nothing left to cancel


def test_a_deployer_resumes_a_paused_deployment_with_a_comment(client, db):
    stage = make_stage(targets=2, steps=PAUSING)
    deployment = run(stage.deploy())
    assert deployment.status == "paused"
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{deployment.pk}/"))
    assert "Paused, waiting for a person." in page
    assert "Click around." in page
    assert 'data-testid="resume-form"' in page
    assert 'name="comment"' in page
    assert 'data-status="paused"' in page  # the manual step's run
    assert 'hx-trigger="every 2s"' in page  # paused is not the end: the page keeps polling

    response = client.post(f"/deployments/{deployment.pk}/resume/", {"comment": "Checked the login page."}, follow=True)
    assert f"Deployment #{deployment.pk} resumed." in html(response)
    deployment.refresh_from_db()
    assert deployment.status == "running"
    manual = StepRun.objects.get(deployment=deployment, kind="manual_intervention")
    assert manual.status == "succeeded"
    assert manual.message == f"Resumed by {stage.deployer.username}. Checked the login page."
    assert run(deployment).status == "succeeded"


def test_controls_are_hidden_and_refused_without_deploy(client, db):
    stage = make_stage(targets=1, steps=PAUSING)
    deployment = run(stage.deploy())
    client.force_login(stage.viewer)
    page = html(client.get(f"/deployments/{deployment.pk}/"))
    assert "Paused, waiting for a person." in page
    assert 'data-testid="resume-form"' not in page
    assert 'data-testid="deployment-controls"' not in page
    assert "Someone who may deploy to" in page
    for action in ("resume", "cancel"):
        response = client.post(f"/deployments/{deployment.pk}/{action}/", follow=True)
        assert "You may not deploy" in html(response)
    deployment.refresh_from_db()
    assert deployment.status == "paused"

    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{deployment.pk}/"))
    assert 'data-testid="resume-form"' in page
    assert f"/deployments/{deployment.pk}/cancel/" in page


def test_a_failed_deployment_offers_retry_and_runs_the_failed_step_again(client, db):
    stage = make_stage(targets=1, steps=[{"name": "Flaky", "kind": "shell", "params": {"command": "exit 3"}}])
    deployment = run(stage.deploy())
    assert deployment.status == "failed"
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{deployment.pk}/"))
    assert "Failed." in page
    assert "Flaky on web-1 failed" in page
    assert f'action="/deployments/{deployment.pk}/retry/"' in page
    assert f'action="/deployments/{deployment.pk}/rollback/"' not in page  # no earlier release to go back to
    client.post(f"/deployments/{deployment.pk}/retry/")
    deployment = run(deployment)
    assert deployment.status == "failed"
    flaky = StepRun.objects.get(deployment=deployment, name="Flaky")
    assert flaky.attempt == 2
    assert "attempt 2" in html(client.get(f"/deployments/{deployment.pk}/"))


def test_rollback_deploys_the_previous_release_and_lands_on_the_new_deployment(client, stage):
    run(stage.deploy("1.0.0"))
    current = run(stage.deploy("2.0.0"))
    client.force_login(stage.deployer)
    page = html(client.get(f"/deployments/{current.pk}/"))
    assert "Roll back to 1.0.0" in page
    assert 'data-confirm="Roll ' in page
    response = client.post(f"/deployments/{current.pk}/rollback/")
    rollback = Deployment.objects.get(rollback_of=current)
    assert response.status_code == 302
    assert response.url == f"/deployments/{rollback.pk}/"
    assert rollback.release == stage.releases["1.0.0"]
    page = html(client.get(response.url))
    assert f'rollback of <a href="/deployments/{current.pk}/">#{current.pk}</a>' in page
    assert f'href="/deployments/{rollback.pk}/">#{rollback.pk}</a>' in html(client.get(f"/deployments/{current.pk}/"))


def test_controls_only_accept_post(client, stage):
    deployment = stage.deploy()
    client.force_login(stage.deployer)
    assert client.get(f"/deployments/{deployment.pk}/cancel/").status_code == 405


# --- Templates -----------------------------------------------------------------------------------------


@pytest.fixture
def admin(db):
    return make_user(unique("admin"), is_staff=True, is_superuser=True)


def test_templates_list_and_detail_render_for_every_signed_in_user(client, stage):
    client.force_login(stage.stranger)
    page = html(client.get("/deployments/templates/"))
    assert stage.template.name in page
    assert "v1" in page
    assert "shell" in page
    assert "New template" not in page
    page = html(client.get(f"/deployments/templates/{stage.template.slug}/"))
    assert "echo preparing" in page
    assert "Version 1" in page
    assert "Edit" not in page
    assert client.get(f"/deployments/templates/{stage.template.slug}/?version=7").status_code == 404
    assert client.get("/deployments/templates/nope/").status_code == 404


def test_template_forms_need_the_django_permissions(client, stage):
    client.force_login(stage.deployer)
    response = client.get("/deployments/templates/new/", follow=True)
    assert "You may not create deployment templates" in html(response)
    response = client.post(f"/deployments/templates/{stage.template.slug}/edit/", {"name": "x"}, follow=True)
    assert "You may not change deployment templates" in html(response)
    assert DeploymentTemplate.objects.get(pk=stage.template.pk).name == "Echo deploy"


def test_the_template_form_shows_the_step_kinds_and_their_parameters(client, admin):
    client.force_login(admin)
    page = html(client.get("/deployments/templates/new/"))
    assert 'data-testid="step-kinds"' in page
    for kind in ("shell", "http", "health_check", "release_dir", "manual_intervention", "wait"):
        assert f'id="kind-{kind}"' in page
    assert "instructions" in page
    assert "What the person should check or do before resuming." in page


def test_creating_a_template_with_invalid_steps_shows_each_problem_on_the_steps_field(client, admin):
    client.force_login(admin)
    steps = (
        '[{"name": "Deploy", "kind": "teleport", "params": {}},'
        ' {"name": "Wait", "kind": "wait", "params": {"seconds": "soon"}},'
        ' {"name": "Hand", "kind": "manual_intervention", "params": {}}]'
    )
    data = {"slug": "broken", "name": "Broken", "steps": steps}
    response = client.post("/deployments/templates/new/", data)
    assert response.status_code == 200
    page = html(response)
    assert "The template&#x27;s steps are not valid." in page
    assert "Step 1, kind: Unknown step kind &#x27;teleport&#x27;" in page
    assert "Step 2, params: seconds: &#x27;soon&#x27; is not of type &#x27;number&#x27;" in page
    assert "Step 3, params: &#x27;instructions&#x27; is a required property" in page
    assert re.search(r'<textarea name="steps"[^>]*class="[^"]*is-invalid', page)
    assert "teleport" in page.split('<textarea name="steps"')[1].split("</textarea>")[0]  # the input is kept
    assert not DeploymentTemplate.objects.filter(slug="broken").exists()

    page = html(client.post("/deployments/templates/new/", {**data, "steps": "[{oops"}))
    assert "Not valid JSON: Expecting property name enclosed in double quotes (line 1, column 3)." in page


def test_creating_a_template_lands_on_its_page(client, admin):
    client.force_login(admin)
    steps = '[{"name": "Wait a bit", "kind": "wait", "params": {"seconds": 1}}]'
    response = client.post("/deployments/templates/new/", {"slug": "waiter", "name": "Waiter", "steps": steps})
    assert response.status_code == 302
    assert response.url == "/deployments/templates/waiter/"
    page = html(client.get(response.url))
    assert "Template “Waiter” created as version 1." in page
    assert "Wait a bit" in page


def test_editing_the_steps_makes_version_2_and_keeps_version_1_viewable(client, stage, admin):
    client.force_login(admin)
    slug = stage.template.slug
    form = html(client.get(f"/deployments/templates/{slug}/edit/"))
    assert "echo preparing {{ target.name }}" in form  # the latest steps, as JSON
    steps = '[{"name": "Only step", "kind": "shell", "params": {"command": "echo v2"}}]'
    response = client.post(
        f"/deployments/templates/{slug}/edit/", {"name": "Echo deploy", "description": "Now shorter.", "steps": steps}
    )
    assert response.status_code == 302
    template = DeploymentTemplate.objects.get(slug=slug)
    assert template.version == 2
    assert template.description == "Now shorter."
    page = html(client.get(f"/deployments/templates/{slug}/", follow=True))
    assert "saved as version 2" in page
    assert "Only step" in page
    assert "Version 2" in page
    assert "Version 1" in page
    assert admin.username in page
    old = html(client.get(f"/deployments/templates/{slug}/?version=1"))
    assert "echo preparing" in old
    assert "You are looking at version 1" in old

    # Same steps again: no version 3.
    client.post(f"/deployments/templates/{slug}/edit/", {"name": "Renamed", "description": "", "steps": steps})
    template.refresh_from_db()
    assert (template.version, template.name) == (2, "Renamed")


def test_editing_with_invalid_steps_keeps_the_version(client, stage, admin):
    client.force_login(admin)
    slug = stage.template.slug
    steps = '[{"name": "Bad", "kind": "shell", "params": {"command": ""}}]'
    page = html(client.post(f"/deployments/templates/{slug}/edit/", {"name": "Echo deploy", "steps": steps}))
    assert "Step 1, params: command: &#x27;&#x27; should be non-empty" in page
    assert DeploymentTemplate.objects.get(slug=slug).version == 1


def test_template_pages_run_constant_queries(client, admin, django_assert_max_num_queries):
    client.force_login(admin)
    steps = [{"name": "Wait", "kind": "wait", "params": {"seconds": 1}}]
    for index in range(3):
        template_create(actor=None, slug=f"few-{index}", name=f"Few {index}", steps=steps)
    baseline = queries(client, "/deployments/templates/")
    for index in range(20):
        template_create(actor=None, slug=f"many-{index}", name=f"Many {index}", steps=steps)
    with django_assert_max_num_queries(baseline):
        client.get("/deployments/templates/")
