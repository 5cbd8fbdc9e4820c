"""A worker killed with SIGKILL in the middle of a deployment; a new worker finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.deployments.models import StepRun
from apps.inventory.models import Installation

from .conftest import wait_for
from .test_engine import deploy, wait_for_run

SCRIPT = Path(__file__).with_name("worker_process.py")
# The killed worker's lease: the step's timeout (the `timeout` parameter or DEPLOYMENT_STEP_TIMEOUT) plus
# DEPLOYMENT_LEASE_MARGIN; kept short so the test waits seconds, not minutes.
LEASE_ENV = {"DEPLOYMENT_STEP_TIMEOUT": "4", "DEPLOYMENT_LEASE_MARGIN": "1"}


@pytest.fixture
def worker_process(tmp_path, transactional_db):
    """start() a worker process; every one started is killed at the end."""
    started = []

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            **LEASE_ENV,
            "RELEASEHUB_TEST_DB": str(connection.settings_dict["NAME"]),
            "RELEASEHUB_TEST_BROKER_OPTIONS": json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
        }
        log = open(tmp_path / f"worker-{len(started)}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_a_new_worker_finishes_what_a_killed_one_started(stage, worker_process):
    s = stage()
    s.server.slow[f"/{s.application.slug}-2.0.0.tar.gz"] = 2.0  # each download takes two seconds
    deployment = deploy(s, "2.0.0", strategy="rolling", strategy_options={"batch_size": 2, "health_gate": False})
    first = worker_process()
    wait_for_run(deployment, name="Install", status="running")
    kill(first)
    worker_process()
    deployment = wait_for(deployment, timeout=90)
    assert deployment.status == "succeeded", deployment.status_reason
    assert [s.current(t) for t in s.targets] == ["2.0.0"] * 4
    runs = StepRun.objects.filter(deployment=deployment)
    assert sorted(r.target_name for r in runs if r.status == "succeeded") == [f"web-{i}" for i in range(1, 5)]
    # The interrupted run ran again; the others once: every target deployed exactly once in the end.
    assert sorted(r.attempt for r in runs) == [1, 1, 1, 2]
    installs = Installation.objects.filter(deployment=deployment).values_list("target__name", flat=True)
    assert sorted(installs) == [f"web-{i}" for i in range(1, 5)]  # each target installed exactly once


def test_a_step_that_is_not_idempotent_pauses_for_a_person(stage, worker_process):
    s = stage(targets=1, steps=[{"name": "Migrate", "kind": "shell", "params": {"command": "sleep 30", "timeout": 3}}])
    deployment = deploy(s, "1.0.0", strategy_options={"health_gate": False})
    first = worker_process()
    wait_for_run(deployment, name="Migrate", status="running")
    kill(first)
    worker_process()
    deployment = wait_for(deployment, {"paused"}, timeout=60)
    assert "not safe to run twice" in deployment.status_reason
    assert StepRun.objects.get(deployment=deployment).status == "interrupted"


def test_a_unit_that_keeps_killing_workers_fails(stage, worker_process):
    s = stage(targets=1)
    s.server.slow[f"/{s.application.slug}-1.0.0.tar.gz"] = 30.0
    deployment = deploy(s, "1.0.0", strategy_options={"health_gate": False})
    attempts = settings.DEPLOYMENT_MAX_UNIT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        process = worker_process()
        wait_for_run(deployment, name="Install", status="running", attempt=attempt, timeout=60)
        kill(process)
    worker_process()
    deployment = wait_for(deployment, timeout=60)
    assert deployment.status == "failed"
    assert f"started {attempts} times" in deployment.status_reason
