"""The engine with a real Celery worker, real directory targets and a real HTTP server."""

from __future__ import annotations

import time

import pytest
from django.db import IntegrityError, transaction

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidTransition
from apps.deployments.engine import runner
from apps.deployments.models import Deployment, StepRun
from apps.deployments.plans import canonical_json
from apps.deployments.services import (
    deployment_cancel,
    deployment_create,
    deployment_resume,
    deployment_retry,
    deployment_rollback,
)
from apps.environments.services import variable_create
from apps.inventory.selectors import current_installations
from apps.notifications.models import Delivery

from .conftest import FINAL, wait_for


def test_rolling_deployment_updates_every_target_in_batches(stage, celery_worker):
    s = stage()
    first = deployment_create(
        actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template
    )
    assert wait_for(first).status == "succeeded", first.status_reason
    deployment = deployment_create(
        actor=s.deployer,
        release=s.releases["2.0.0"],
        environment=s.environment,
        strategy="rolling",
        strategy_options={"batch_size": 2},
        template=s.template,
    )
    assert [p["targets"] for p in deployment.plan["phases"]] == [["web-1", "web-2"], ["web-3", "web-4"]]
    deployment = wait_for(deployment)
    assert deployment.status == "succeeded", deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["2.0.0"] * 4
    installed = {i.target.name: i.artifact.version for i in current_installations(environment=s.environment)}
    assert installed == {f"web-{i}": "2.0.0" for i in range(1, 5)}
    runs = StepRun.objects.filter(deployment=deployment, action="deploy")
    assert sorted((r.phase, r.name, r.target_name, r.status) for r in runs) == [
        (0, "Health gate", "web-1", "succeeded"),
        (0, "Health gate", "web-2", "succeeded"),
        (0, "Install", "web-1", "succeeded"),
        (0, "Install", "web-2", "succeeded"),
        (1, "Health gate", "web-3", "succeeded"),
        (1, "Health gate", "web-4", "succeeded"),
        (1, "Install", "web-3", "succeeded"),
        (1, "Install", "web-4", "succeeded"),
    ]


def deploy(s, version: str, **options):
    options.setdefault("template", s.template)
    return deployment_create(actor=s.deployer, release=s.releases[version], environment=s.environment, **options)


def test_failed_health_gate_stops_the_rollout_and_rolls_updated_targets_back(stage, celery_worker):
    s = stage()
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    s.server.unhealthy.add("web-3")
    deployment = deploy(
        s,
        "2.0.0",
        strategy="rolling",
        strategy_options={"batch_size": 2, "rollback_on_failure": True, "health_timeout": 1},
    )
    deployment = wait_for(deployment)
    assert deployment.status == "rolled_back", deployment.status_reason
    assert "Health gate on web-3 failed" in deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["1.0.0"] * 4
    installed = {i.target.name: i.artifact.version for i in current_installations(environment=s.environment)}
    assert installed == {f"web-{i}": "1.0.0" for i in range(1, 5)}
    undone = StepRun.objects.filter(deployment=deployment, action="rollback").values_list("target_name", "status")
    assert sorted(undone) == [(f"web-{i}", "succeeded") for i in range(1, 5)]


def test_failed_batch_without_rollback_leaves_the_rest_untouched(stage, celery_worker):
    s = stage()
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    s.server.unhealthy.add("web-1")
    deployment = wait_for(
        deploy(s, "2.0.0", strategy="rolling", strategy_options={"batch_size": 2, "health_timeout": 1})
    )
    assert deployment.status == "failed"
    assert [s.current(t) for t in s.targets] == ["2.0.0", "2.0.0", "1.0.0", "1.0.0"]


def test_a_digest_mismatch_fails_the_step_without_touching_current(stage, celery_worker):
    s = stage()
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    s.add_release("3.0.0", digest="sha256:" + "0" * 64)
    deployment = wait_for(deploy(s, "3.0.0"))
    assert deployment.status == "failed"
    run = StepRun.objects.get(deployment=deployment, target_name="web-1", step=0)
    assert run.status == "failed"
    assert "sha256:" + "0" * 64 in run.message
    assert [s.current(t) for t in s.targets] == ["1.0.0"] * 4
    assert not (s.root / "web-1" / "releases" / "3.0.0").exists()
    told = Delivery.objects.get(event="deployment.failed", payload__deployment=deployment.pk)
    assert told.recipient == s.deployer.email


def test_two_deployments_to_one_environment_run_one_after_the_other(stage, celery_worker):
    s = stage()
    first, second = deploy(s, "1.0.0"), deploy(s, "2.0.0")
    assert (first.status, second.status) == ("running", "queued")
    first, second = wait_for(first), wait_for(second)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert second.started_at >= first.finished_at
    assert [s.current(t) for t in s.targets] == ["2.0.0"] * 4


def test_manual_intervention_pauses_until_a_person_resumes(stage, celery_worker):
    s = stage(
        targets=2,
        steps=[
            {"name": "Install", "kind": "release_dir", "params": {}},
            {"name": "Smoke test by hand", "kind": "manual_intervention", "params": {"instructions": "Click around."}},
        ],
    )
    deployment = deploy(s, "1.0.0", strategy="rolling", strategy_options={"batch_size": 1, "health_gate": False})
    deployment = wait_for(deployment, {"paused"})
    assert "Click around." in deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["1.0.0", None]
    deployment_resume(actor=s.deployer, deployment=deployment)
    deployment = wait_for(deployment, {"paused"} | FINAL)
    assert deployment.status == "paused"
    assert [s.current(t) for t in s.targets] == ["1.0.0", "1.0.0"]
    deployment_resume(actor=s.deployer, deployment=deployment, comment="All good.")
    assert wait_for(deployment).status == "succeeded"
    manual = StepRun.objects.filter(deployment=deployment, kind="manual_intervention").order_by("phase")
    assert [(r.status, r.message) for r in manual] == [
        ("succeeded", f"Resumed by {s.deployer.username}."),
        ("succeeded", f"Resumed by {s.deployer.username}. All good."),
    ]


def test_cancel_mid_rollout_stops_after_the_current_unit(stage, celery_worker):
    s = stage(
        steps=[
            {"name": "Install", "kind": "release_dir", "params": {}},
            {"name": "Warm up", "kind": "shell", "params": {"command": "sleep 1"}},
        ]
    )
    deployment = deploy(s, "1.0.0", strategy="rolling", strategy_options={"batch_size": 1, "health_gate": False})
    wait_for_run(deployment, name="Warm up", status="running")
    requested = deployment_cancel(actor=s.deployer, deployment=deployment)
    assert (requested.status, requested.cancel_requested) == ("running", True)  # the unit in progress finishes
    deployment = wait_for(deployment)
    assert deployment.status == "cancelled"
    assert [s.current(t) for t in s.targets] == ["1.0.0", None, None, None]
    assert StepRun.objects.get(deployment=deployment, name="Warm up").status == "succeeded"


def test_secrets_reach_the_step_but_never_its_log_or_the_plan(stage, celery_worker):
    s = stage(
        targets=1,
        steps=[
            {
                "name": "Configure",
                "kind": "shell",
                "params": {
                    "command": 'echo "password is $DB_PASSWORD"; echo "{{ var.DB_PASSWORD }}" > {{ target.path }}.pw',
                },
            }
        ],
    )
    variable_create(actor=None, environment=s.environment, name="DB_PASSWORD", value="hunter2-very-secret", secret=True)
    deployment = wait_for(deploy(s, "1.0.0", strategy_options={"health_gate": False}))
    assert deployment.status == "succeeded", deployment.status_reason
    assert (s.root / "web-1.pw").read_text() == "hunter2-very-secret\n"
    run = StepRun.objects.get(deployment=deployment)
    assert "password is ••••••••" in run.log
    assert "hunter2" not in run.log
    assert "hunter2" not in canonical_json(deployment.plan)
    assert "⟦secret:DB_PASSWORD⟧" in canonical_json(deployment.plan)


def test_a_secret_in_a_message_is_masked_in_the_reason_history_and_audit_trail(stage, celery_worker):
    s = stage(
        targets=1,
        steps=[
            {"name": "Check", "kind": "manual_intervention", "params": {"instructions": "Sign in with {{ var.PW }}."}}
        ],
    )
    variable_create(actor=None, environment=s.environment, name="PW", value="hunter2-very-secret", secret=True)
    deployment = wait_for(deploy(s, "1.0.0", strategy_options={"health_gate": False}), {"paused"})
    assert deployment.status_reason.endswith("Sign in with ••••••••.")
    kept = [
        *AuditEvent.objects.filter(object_id=str(deployment.pk)).values_list("details_json", flat=True),
        *deployment.history.values_list("status_reason", flat=True),
        *StepRun.objects.filter(deployment=deployment).values_list("message", flat=True),
    ]
    assert kept
    assert not [text for text in kept if "hunter2" in text]


def test_cancel_during_a_wait_ends_the_deployment_at_once(stage, celery_worker):
    s = stage(targets=1, steps=[{"name": "Soak", "kind": "wait", "params": {"seconds": 3600}}])
    deployment = deploy(s, "1.0.0", strategy_options={"health_gate": False})
    wait_for_run(deployment, name="Soak", status="waiting")
    assert deployment_cancel(actor=s.deployer, deployment=deployment).status == "cancelled"


def test_a_rollback_in_progress_cannot_be_cancelled_and_an_old_failure_cannot_be_retried(stage, celery_worker):
    s = stage(targets=2)
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    s.server.unhealthy.add("web-2")
    failed = wait_for(deploy(s, "2.0.0", strategy_options={"health_timeout": 1}))
    assert failed.status == "failed"
    s.server.unhealthy.clear()
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    with pytest.raises(InvalidTransition, match="later deployment"):
        deployment_retry(actor=s.deployer, deployment=failed)
    failed.refresh_from_db()
    Deployment.objects.filter(pk=failed.pk).update(status="running", mode="rollback")  # as the engine leaves it
    failed.refresh_from_db()
    with pytest.raises(InvalidTransition, match="rolling back"):
        deployment_cancel(actor=s.deployer, deployment=failed)


def wait_for_run(deployment, *, name: str, status: str, attempt: int | None = None, timeout: float = 30) -> StepRun:
    """Poll until a step run of `name` has `status` (and `attempt`), running the dispatcher as beat would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = StepRun.objects.filter(deployment=deployment, name=name, status=status)
        run = runs.filter(attempt=attempt).first() if attempt else runs.first()
        if run:
            return run
        runner.dispatch()
        time.sleep(0.1)
    raise AssertionError(f"no {status} run of {name}")


def test_retry_runs_the_failed_step_again_and_goes_on(stage, celery_worker):
    s = stage(targets=2)
    s.server.unhealthy.add("web-2")
    deployment = wait_for(deploy(s, "1.0.0", strategy_options={"health_timeout": 1}))
    assert deployment.status == "failed"
    s.server.unhealthy.clear()
    deployment_retry(actor=s.deployer, deployment=deployment)
    deployment = wait_for(deployment)
    assert deployment.status == "succeeded", deployment.status_reason
    gate = StepRun.objects.get(deployment=deployment, name="Health gate", target_name="web-2")
    assert (gate.status, gate.attempt) == ("succeeded", 2)


def test_rollback_deploys_the_previous_successful_release(stage, celery_worker):
    s = stage(targets=2)
    assert wait_for(deploy(s, "1.0.0")).status == "succeeded"
    second = wait_for(deploy(s, "2.0.0", strategy="rolling", strategy_options={"batch_size": 1}))
    assert [s.current(t) for t in s.targets] == ["2.0.0", "2.0.0"]
    rollback = deployment_rollback(actor=s.deployer, deployment=second)
    assert (rollback.release, rollback.rollback_of, rollback.strategy) == (s.releases["1.0.0"], second, "rolling")
    assert rollback.strategy_options["batch_size"] == 1
    assert wait_for(rollback).status == "succeeded"
    assert [s.current(t) for t in s.targets] == ["1.0.0", "1.0.0"]


def test_the_database_allows_one_active_deployment_per_environment(stage):
    s = stage(targets=1)
    first, second = deploy(s, "1.0.0"), deploy(s, "2.0.0")
    assert (first.status, second.status) == ("running", "queued")
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.filter(pk=second.pk).update(status="paused")


def test_a_wait_holds_no_worker_and_counts_as_one_attempt(stage, celery_worker):
    s = stage(targets=1, steps=[{"name": "Soak", "kind": "wait", "params": {"seconds": 1}}])
    deployment = wait_for(deploy(s, "1.0.0", strategy_options={"health_gate": False}))
    assert deployment.status == "succeeded"
    run = StepRun.objects.get(deployment=deployment)
    assert run.attempt == 1
    assert (run.finished_at - run.started_at).total_seconds() >= 1
