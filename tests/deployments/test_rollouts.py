"""Blue/green, rolling blue/green and canary deployments with a real worker, real directory targets and real
HTTP servers answering the version each target runs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidTransition
from apps.deployments.models import Deployment, StepRun
from apps.deployments.services import (
    deployment_create,
    deployment_promote,
    deployment_resume,
    deployment_rollback,
)
from apps.environments.services import traffic_switched
from apps.inventory.selectors import current_installations

from .conftest import hook_calls, wait_for


def deploy(s, version: str, strategy: str, **options):
    return deployment_create(
        actor=s.deployer,
        release=s.releases[version],
        environment=s.environment,
        template=s.template,
        strategy=strategy,
        strategy_options=options,
    )


def files(s, name: str) -> dict[str, bytes]:
    """Every file under a target's directory, with its content: what a switch must leave untouched."""
    root = s.root / name
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def wait_for_run(deployment, kind: str, status: str, timeout: float = 30) -> StepRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = StepRun.objects.filter(deployment=deployment, kind=kind, status=status).first()
        if run:
            return run
        time.sleep(0.2)
    deployment.refresh_from_db()
    runs = list(StepRun.objects.filter(deployment=deployment).values_list("name", "target_name", "status", "message"))
    raise AssertionError(f"no {kind} run became {status}: {deployment.status} {deployment.status_reason} {runs}")


FAST = {"interval": 0.2}


def page_of(s, deployment) -> str:
    client = Client()
    client.force_login(s.deployer)
    response = client.get(f"/deployments/{deployment.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_blue_green_installs_on_the_idle_slot_switches_and_switches_back(slots, celery_worker):
    s = slots()
    first = wait_for(deploy(s, "1.0.0", "blue_green"))
    assert first.status == "succeeded", first.status_reason
    s.environment.refresh_from_db()
    assert (s.environment.live_slot, s.environment.idle_weight) == ("green", 0)
    assert [s.current(t) for t in s.targets] == [None, None, "1.0.0", "1.0.0"]

    second = deploy(s, "2.0.0", "blue_green")
    assert [p["name"] for p in second.plan["phases"]] == ["Install on blue (idle slot)", "Switch traffic to blue"]
    assert sorted(second.plan["targets"]) == ["blue-1", "blue-2"]
    s.server.health_calls.clear()
    second = wait_for(second)
    assert second.status == "succeeded", second.status_reason
    assert set(s.server.health_calls) == {"/version/blue-1", "/version/blue-2"}  # only the idle slot was checked
    assert [s.current(t) for t in s.targets] == ["2.0.0", "2.0.0", "1.0.0", "1.0.0"]
    s.environment.refresh_from_db()
    assert s.environment.live_slot == "blue"
    assert hook_calls(s) == ["green 100 green-1,green-2", "blue 100 blue-1,blue-2"]

    page = page_of(s, second)
    assert "Switch back to green (1.0.0)" in page
    assert 'data-testid="slot-blue"' in page
    assert page.count('data-testid="stage"') == 2

    before = {t.name: files(s, t.name) for t in s.targets}
    back = deployment_rollback(actor=s.deployer, deployment=second)
    assert back.rollback_of == second
    assert back.plan["strategy"]["switch_back"] is True
    assert back.plan["targets"] == {}
    back = wait_for(back)
    assert back.status == "succeeded", back.status_reason
    s.environment.refresh_from_db()
    assert s.environment.live_slot == "green"
    assert hook_calls(s)[-1] == "green 100 green-1,green-2"
    assert {t.name: files(s, t.name) for t in s.targets} == before  # no redeploy: both slots untouched
    assert list(StepRun.objects.filter(deployment=back).values_list("kind", flat=True)) == ["switch_traffic"]
    switched = AuditEvent.objects.filter(verb="environment.traffic_switched").order_by("id")
    assert [e.details["live_slot"] for e in switched] == ["green", "blue", "green"]


def test_switch_back_while_the_old_slot_is_kept(slots, celery_worker):
    s = slots()
    assert wait_for(deploy(s, "1.0.0", "blue_green")).status == "succeeded"
    before = files(s, "green-1")
    deployment = deploy(s, "2.0.0", "blue_green", keep_old_slot_for="5m")
    wait_for_run(deployment, "wait", "waiting")
    s.environment.refresh_from_db()
    assert s.environment.live_slot == "blue"
    deployment = deployment_rollback(actor=s.deployer, deployment=deployment)  # in place: the same deployment
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert deployment.status_reason == f"Rolled back by {s.deployer.username}."
    s.environment.refresh_from_db()
    assert s.environment.live_slot == "green"
    assert hook_calls(s)[-2:] == ["blue 100 blue-1,blue-2", "blue 0 "]
    assert [s.current(t) for t in s.targets] == ["2.0.0", "2.0.0", "1.0.0", "1.0.0"]  # files stay
    assert files(s, "green-1") == before


def test_rolling_blue_green_switches_the_first_batch_back_when_the_second_gate_fails(slots, celery_worker):
    s = slots()
    assert wait_for(deploy(s, "1.0.0", "blue_green")).status == "succeeded"
    s.server.unhealthy.add("blue-2")
    s.server.roots.pop("blue-2")  # blue-2 answers 500 once it takes traffic
    deployment = deploy(s, "2.0.0", "rolling_blue_green", batch_size=1, pause=1, health_gate=False, analysis=FAST)
    assert [p["name"] for p in deployment.plan["phases"]] == [
        "Install on blue (idle slot)",
        "Batch 1: 50% of traffic to blue",
        "Batch 2: 100% of traffic to blue",
    ]
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert "Analysis failed" in deployment.status_reason
    assert hook_calls(s)[1:] == ["blue 50 blue-1", "blue 100 blue-1,blue-2", "blue 50 blue-1", "blue 0 "]
    s.environment.refresh_from_db()
    assert (s.environment.live_slot, s.environment.idle_weight) == ("green", 0)
    passed = StepRun.objects.get(deployment=deployment, phase=1, kind="analysis")
    assert passed.status == "succeeded"
    assert passed.state["failures"] == 0
    failed = StepRun.objects.get(deployment=deployment, phase=2, kind="analysis")
    assert failed.status == "failed"
    assert failed.state["samples"][0]["failed"] == ["blue-2: HTTP 500"]


def test_a_failing_canary_is_rolled_back_at_its_first_stage(stage, celery_worker):
    s = stage(targets=10, versions=True)
    assert wait_for(deploy(s, "1.0.0", "all_at_once")).status == "succeeded"
    s.server.failing_versions.add("2.0.0")
    stages = [{"weight": 10, "pause": 5}, {"weight": 50, "pause": 5}, {"weight": 100}]
    deployment = deploy(s, "2.0.0", "canary", stages=stages, health_gate=False, analysis=FAST)
    assert deployment.plan["phases"][0]["targets"] == ["web-1"]
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert "Analysis failed: 1 of 1 probes failed" in deployment.status_reason
    assert {s.current(t) for t in s.targets} == {"1.0.0"}
    # Only the canary received 2.0.0 (its files stay for inspection; `current` went back).
    assert [t.name for t in s.targets if (s.root / t.name / "releases" / "2.0.0").exists()] == ["web-1"]
    assert set(StepRun.objects.filter(deployment=deployment).values_list("phase", flat=True)) == {0}
    analysis = StepRun.objects.get(deployment=deployment, kind="analysis")
    assert analysis.state["samples"][0]["failed"] == ["web-1: HTTP 500"]  # the evidence is kept
    page = page_of(s, deployment)
    assert 'data-state="undone"' in page
    assert "Analysis: 1 of 1 probe failed (limit 10%)" in page
    assert "web-1: HTTP 500" in page  # the chart's tooltip
    installed = {i.target.name: i.artifact.version for i in current_installations(environment=s.environment)}
    assert set(installed.values()) == {"1.0.0"}


def test_a_healthy_canary_reaches_every_target(stage, celery_worker):
    s = stage(targets=4, versions=True)
    stages = [{"weight": 25, "pause": 1}, {"weight": 50, "pause": "1s"}, {"weight": 100}]
    deployment = wait_for(deploy(s, "2.0.0", "canary", stages=stages, analysis=FAST))
    assert deployment.status == "succeeded", deployment.status_reason
    assert [(p["name"], p["targets"]) for p in deployment.plan["phases"]] == [
        ("Canary 25%", ["web-1"]),
        ("Canary 50%", ["web-2"]),
        ("Canary 100%", ["web-3", "web-4"]),
    ]
    assert {s.current(t) for t in s.targets} == {"2.0.0"}
    runs = StepRun.objects.filter(deployment=deployment, kind="analysis").order_by("phase")
    assert [(r.phase, r.status) for r in runs] == [(0, "succeeded"), (1, "succeeded")]
    assert len(runs[1].state["samples"]) >= 2
    assert {t["name"] for t in deployment.plan["steps"][runs[1].step]["params"]["targets"]} == {"web-1", "web-2"}


def test_a_metrics_threshold_breach_fails_the_analysis(stage, celery_worker):
    s = stage(targets=2, versions=True)
    s.server.metrics = {"error_rate": 0.05}
    analysis = {**FAST, "metrics_url": f"{s.server.url}/metrics", "metrics_condition": "error_rate < 0.01"}
    stages = [{"weight": 50, "pause": 5}, {"weight": 100}]
    deployment = wait_for(deploy(s, "2.0.0", "canary", stages=stages, analysis=analysis))
    assert deployment.status == "rolled_back", deployment.status_reason
    run = StepRun.objects.get(deployment=deployment, kind="analysis")
    sample = run.state["samples"][0]
    assert sample["failed"] == ["metrics: error_rate < 0.01 does not hold"]
    assert sample["metrics"] == {"error_rate": 0.05}
    assert s.current(s.targets[1]) is None


def test_a_judgment_pauses_the_canary_until_a_person_continues(stage, celery_worker):
    s = stage(targets=2, versions=True)
    stages = [{"weight": 50, "judgment": True}, {"weight": 100}]
    deployment = wait_for(deploy(s, "2.0.0", "canary", stages=stages), statuses={"paused"})
    assert "Canary 50%: check the canary" in deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["2.0.0", None]
    deployment_resume(actor=s.deployer, deployment=deployment, comment="dashboards are green")
    assert wait_for(deployment).status == "succeeded"
    assert [s.current(t) for t in s.targets] == ["2.0.0", "2.0.0"]


def test_a_judgment_can_roll_the_canary_back(stage, celery_worker):
    s = stage(targets=2, versions=True)
    assert wait_for(deploy(s, "1.0.0", "all_at_once")).status == "succeeded"
    stages = [{"weight": 50, "judgment": True}, {"weight": 100}]
    deployment = wait_for(deploy(s, "2.0.0", "canary", stages=stages), statuses={"paused"})
    deployment_rollback(actor=s.deployer, deployment=deployment)
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["1.0.0", "1.0.0"]
    judgment = StepRun.objects.get(deployment=deployment, kind="manual_intervention")
    assert judgment.status == "failed"
    assert "chose to roll back" in judgment.message


def test_promote_ends_the_analysis_early(stage, celery_worker):
    s = stage(targets=2, versions=True)
    stages = [{"weight": 50, "pause": "10m"}, {"weight": 100}]
    deployment = deploy(s, "2.0.0", "canary", stages=stages, analysis={"interval": 60})
    wait_for_run(deployment, "analysis", "waiting")
    for _ in range(50):  # the probe round may still be recording its outcome
        try:
            deployment_promote(actor=s.deployer, deployment=deployment)
            break
        except InvalidTransition:
            time.sleep(0.1)
    deployment = wait_for(deployment, timeout=30)
    assert deployment.status == "succeeded", deployment.status_reason
    run = StepRun.objects.get(deployment=deployment, kind="analysis")
    assert run.message == f"Promoted by {s.deployer.username}."
    assert AuditEvent.objects.filter(verb="deployment.promoted", object_id=str(deployment.pk)).exists()


def test_a_canary_by_traffic_weight_moves_traffic_not_targets(slots, celery_worker):
    s = slots(traffic_weights=True)
    stages = [{"weight": 10, "pause": 1}, {"weight": 100}]
    deployment = deploy(s, "2.0.0", "canary", stages=stages, analysis=FAST)
    assert [p["name"] for p in deployment.plan["phases"]] == [
        "Install on green (idle slot)",
        "Canary 10%",
        "Canary 100%",
    ]
    deployment = wait_for(deployment)
    assert deployment.status == "succeeded", deployment.status_reason
    assert hook_calls(s) == ["green 10 green-1,green-2", "green 100 green-1,green-2"]
    s.environment.refresh_from_db()
    assert s.environment.live_slot == "green"


def test_a_plan_made_before_another_switch_does_not_start(slots, celery_worker):
    s = slots()
    later = timezone.now() + timedelta(hours=1)
    stale = deployment_create(
        actor=s.deployer,
        release=s.releases["2.0.0"],
        environment=s.environment,
        template=s.template,
        strategy="blue_green",
        scheduled_for=later,
    )
    assert stale.plan["phases"][0]["name"] == "Install on green (idle slot)"
    traffic_switched(deployment=stale, slot="green", weight=100)  # another deployment switched meanwhile
    Deployment.objects.filter(pk=stale.pk).update(scheduled_for=timezone.now())
    stale = wait_for(stale)
    assert stale.status == "failed"
    assert "changed since this plan was made" in stale.status_reason
    assert [s.current(t) for t in s.targets] == [None] * 4


@pytest.mark.parametrize("strategy", ["blue_green", "rolling_blue_green"])
def test_blue_green_needs_every_target_in_a_slot(stage, strategy):
    s = stage(targets=2)
    with pytest.raises(Exception, match="not in a slot: web-1, web-2"):
        deploy(s, "2.0.0", strategy)
