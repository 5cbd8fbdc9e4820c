"""The engine: advances a deployment one unit of work at a time (one step on one batch of targets).

The database is the truth. `advance()` claims the deployment with a lease (a row lock taken
with skip_locked, then an owner and an expiry written to the row), runs the unit with every
StepRun persisted before and after each target, records the outcome, moves the cursor and
enqueues the next unit on commit. A duplicate or redelivered message finds the lease held,
or nothing due, and returns. Waits are `next_run_at` values that `dispatch()` (beat) wakes.

When a worker dies, its lease expires; `dispatch()` hands the deployment to another worker,
whose claim finds the steps left `running`: those of idempotent kinds run again, any other
pauses the deployment for a person. A unit whose workers keep dying fails after
DEPLOYMENT_MAX_UNIT_ATTEMPTS claims.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.approvals.models import Decision, Verdict
from apps.core import crypto
from apps.environments.models import Variable
from apps.environments.services import traffic_switched
from apps.inventory import services as inventory

from .. import services, steps
from ..models import ACTIVE_STATUSES, Deployment, StepRun
from ..models import DeploymentStatus as S
from ..models import StepRunStatus as R
from ..plans import SECRET_REFERENCE, phase_steps, undoes
from ..selectors import has_undo_work, undoable_runs
from ..tasks import enqueue

logger = logging.getLogger(__name__)
MASK = "••••••••"
MESSAGE_GRACE = 30  # seconds a sent `advance` message may take to reach a worker before the dispatcher resends
WAKE_AHEAD = 300  # waits up to this many seconds are a delayed message; longer ones are woken by the dispatcher
DONE_STATUSES = (R.SUCCEEDED, R.SKIPPED)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _lease_for(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds + settings.DEPLOYMENT_LEASE_MARGIN)


def step_timeout(kind: str, params: dict | None) -> float:
    """Seconds one run of a step may take: what its kind says of these parameters, or the default."""
    registered = steps.REGISTRY.get(kind)
    budget = registered.budget(params or {}) if registered else None
    return float(budget or settings.DEPLOYMENT_STEP_TIMEOUT)


def _unit_timeouts(deployment: Deployment) -> list[float]:
    """The timeout of each run in the deployment's next unit of work."""
    plan = deployment.plan
    if deployment.phase >= len(plan["phases"]) or deployment.step >= len(plan["steps"]):
        return [settings.DEPLOYMENT_STEP_TIMEOUT]
    step = plan["steps"][deployment.step]
    if step["scope"] == "batch":
        return [step_timeout(step["kind"], step.get("params"))]
    names = plan["phases"][deployment.phase]["targets"]
    return [step_timeout(step["kind"], plan["targets"][name]["params"][deployment.step]) for name in names]


def unit_budget(deployment: Deployment) -> float:
    """Seconds of step time the deployment's next unit may take (the task's time limits)."""
    return sum(_unit_timeouts(deployment))


def schedule(deployment: Deployment, at: datetime | None = None) -> None:
    """Enqueue the deployment's next unit once the current transaction commits (to run at `at`, if given).

    The row gets an ownerless lease until MESSAGE_GRACE seconds after that: the message is on its
    way, so the dispatcher leaves the deployment alone until then, and sends another only if it was lost.
    """
    pk, budget = deployment.pk, unit_budget(deployment)
    grace = (at or timezone.now()) + timedelta(seconds=MESSAGE_GRACE)
    Deployment.objects.filter(pk=pk).update(lease_owner="", lease_expires_at=grace)
    transaction.on_commit(lambda: enqueue(pk, budget, eta=at))


# --- Claiming ------------------------------------------------------------------------------------------


def claim(deployment_id: int, owner: str) -> Deployment | None:
    """Take the lease on a running deployment whose next unit is due; None when there is nothing to do
    (not running, not due, or another live worker holds it)."""
    now = timezone.now()
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("environment", "release__application")
            .filter(pk=deployment_id, status=S.RUNNING)
            .first()
        )
        if deployment is None:
            return None
        held = deployment.lease_owner and deployment.lease_expires_at and deployment.lease_expires_at > now
        if held:
            return None
        if deployment.next_run_at is not None and deployment.next_run_at > now:
            return None
        if deployment.lease_owner and not _recover(deployment):
            return None
        attempts = deployment.unit_attempts + 1
        if attempts > settings.DEPLOYMENT_MAX_UNIT_ATTEMPTS:
            services.transition(
                deployment,
                S.FAILED,
                reason=f"This unit of work was started {attempts - 1} times and its worker was lost each time.",
            )
            return None
        Deployment.objects.filter(pk=deployment.pk).update(
            lease_owner=owner,
            # Renewed before each run of the unit, so a lost worker is noticed within one step's timeout.
            lease_expires_at=_lease_for(max(_unit_timeouts(deployment))),
            unit_attempts=attempts,
            next_run_at=None,
        )
        deployment.lease_owner = owner
    return deployment


def _recover(deployment: Deployment) -> bool:
    """The previous holder's lease expired: its worker died. Steps it left running run again when their
    kind is idempotent; otherwise the deployment pauses for a person. Returns whether to go on."""
    logger.warning("deployment %s: lease of %s expired; recovering", deployment.pk, deployment.lease_owner)
    unsafe = []
    for run in deployment.step_runs.filter(status=R.RUNNING):
        run.status = R.INTERRUPTED
        run.message = "Its worker stopped while it ran."
        run.save(update_fields=["status", "message"])
        registered = steps.REGISTRY.get(run.kind)
        if registered is None or not registered.idempotent:
            unsafe.append(run)
    if not unsafe:
        return True
    names = ", ".join(f"{run.name}" + (f" on {run.target_name}" if run.target_name else "") for run in unsafe)
    services.transition(
        deployment,
        S.PAUSED,
        reason=f"Interrupted while running {names}, which is not safe to run twice. "
        "Check the target, then resume (the step runs again) or cancel.",
    )
    return False


# --- Running one unit ----------------------------------------------------------------------------------


class LeaseLost(Exception):
    """This worker no longer holds the deployment: it stops at once and records nothing."""


@dataclass
class Outcome:
    kind: str  # "done", "failed", "waiting", "paused"
    message: str = ""
    resume_at: datetime | None = None
    # waiting, for a kind that takes signals: its StepRun and the id of the newest signal the step saw
    run: int | None = None
    seen: str = ""


class StepLog:
    """A StepRun's log: secrets masked, size capped, flushed to the database at most once a second so the
    page can show it while the step runs."""

    def __init__(self, run: StepRun, secrets: list[str]) -> None:
        self.run = run
        self.secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self.text = run.log
        self.flushed = None  # the first line is written at once, later ones at most once a second

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def __call__(self, line: str) -> None:
        limit = settings.DEPLOYMENT_LOG_LIMIT
        if len(self.text) >= limit:
            return
        self.text += self.mask(line.rstrip("\n")) + "\n"
        if len(self.text) >= limit:
            self.text = self.text[:limit] + "\n[log truncated]\n"
        if self.flushed is None or (timezone.now() - self.flushed).total_seconds() >= 1:
            self.flush()

    def flush(self) -> None:
        StepRun.objects.filter(pk=self.run.pk).update(log=self.text)
        self.flushed = timezone.now()


def _secrets(deployment: Deployment) -> dict[tuple[int | None, str], str]:
    """The environment's secret values, decrypted, by (target id or None, name)."""
    return {
        (v.target_id, v.name): crypto.decrypt(v.value)
        for v in Variable.objects.filter(environment_id=deployment.environment_id, secret=True)
    }


def _person(user) -> dict[str, str] | None:
    if user is None:
        return None
    return {"name": user.get_full_name() or user.username, "email": user.email or f"{user.username}@users.invalid"}


def _deployment_info(deployment: Deployment) -> dict[str, Any]:
    """Who asked for the deployment and who approved its plan (steps that write history, such as gitops_commit)."""
    decisions = Decision.objects.filter(request__deployment=deployment, verdict=Verdict.APPROVE).select_related("user")
    return {
        "id": deployment.pk,
        "url": settings.RELEASEHUB_BASE_URL + reverse("deployments:detail", args=[deployment.pk]),
        "requested_by": _person(deployment.created_by),
        "approvers": [_person(decision.user) for decision in decisions.order_by("created_at", "id")],
    }


def _substitute(value: Any, lookup) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, lookup) for item in value]
    if isinstance(value, str) and "⟦secret:" in value:
        return SECRET_REFERENCE.sub(lambda match: lookup(match.group(1)), value)
    return value


def _context(deployment, kind: str, target: dict | None, params: dict, state: dict, secrets) -> steps.StepContext:
    """The StepContext of one run: secret references replaced by their values (a target's own first)."""
    plan = deployment.plan

    def lookup(name: str) -> str:
        key = (target["id"], name) if target and (target["id"], name) in secrets else (None, name)
        if key not in secrets:
            raise LookupError(f"The secret variable {name} no longer exists in {deployment.environment.slug}.")
        return secrets[key]

    variables = target["variables"] if target else {}
    env = {name: _substitute(value, lookup) for name, value in variables.items()}
    params = _substitute(params, lookup)
    artifacts = plan["release"]["artifacts"]
    release = {k: v for k, v in plan["release"].items() if k != "artifacts"}
    info = {k: v for k, v in target.items() if k not in ("variables", "params")} if target else None
    return steps.StepContext(
        params=params,
        target=info,
        artifact=artifacts[0] if artifacts else None,
        release=release,
        environment=plan["environment"],
        env=env,
        log=lambda line: None,
        state=state,
        timeout=step_timeout(kind, params),
    )


def _unit_runs(deployment: Deployment, action: str, names: list[str], name: str, kind: str) -> dict[str, StepRun]:
    """The StepRuns of this unit by target name, the missing ones created (one query each way)."""
    plan = deployment.plan
    where = {"deployment": deployment, "action": action, "phase": deployment.phase, "step": deployment.step}
    runs = {run.target_name: run for run in StepRun.objects.filter(**where, target_name__in=names)}
    missing = [
        StepRun(**where, target_name=t, name=name, kind=kind, target_id=plan["targets"][t]["id"] if t else None)
        for t in names
        if t not in runs
    ]
    for run in StepRun.objects.bulk_create(missing):
        runs[run.target_name] = run
    return runs


def _execute(deployment, run: StepRun, kind, params, target, *, owner: str, secrets: dict, rollback_state=None):
    """Run (or roll back) one step on one target; the StepRun records every stage. Returns the StepResult."""
    if run.status != R.WAITING:  # a waiting step goes on with the same attempt
        run.attempt, run.started_at = run.attempt + 1, timezone.now()
        if run.attempt > 1:
            run.log += f"--- attempt {run.attempt} ---\n"
    run.status, run.finished_at = R.RUNNING, None
    with transaction.atomic():
        renewed = Deployment.objects.filter(pk=deployment.pk, lease_owner=owner, status=S.RUNNING).update(
            lease_expires_at=_lease_for(step_timeout(kind.name, params))
        )
        if not renewed:  # the lease expired and another worker took over, or the deployment ended
            raise LeaseLost
        run.save(update_fields=["status", "attempt", "started_at", "finished_at", "log"])
    log = StepLog(run, list(secrets.values()))  # every secret of the environment is masked, used or not
    try:
        state = rollback_state if rollback_state is not None else run.state
        ctx = _context(deployment, kind.name, target, params, state, secrets)
        ctx.log = log
        ctx.checkpoint = lambda state: StepRun.objects.filter(pk=run.pk).update(state=state)
        ctx.attempt = run.attempt
        if kind.signals:
            ctx.signals = run.signals
        if kind.describes_deployment:
            ctx.deployment = _deployment_info(deployment)
        result = kind.rollback(ctx) if rollback_state is not None else kind.run(ctx)
    except Exception as exc:  # a failing step must not kill the engine; the log says what happened
        message = f"{type(exc).__name__}: {log.mask(str(exc))}"
        logger.warning("deployment %s: step %s raised %s", deployment.pk, run.name, message)  # no traceback: secrets
        saved = StepRun.objects.filter(pk=run.pk).values_list("state", flat=True).first()  # its checkpoints
        result = steps.StepResult(steps.StepStatus.FAILED, message, state=saved or {})
    if result.message:
        log(result.message)
    run.log = log.text
    run.status = result.status
    run.exit_code = result.exit_code
    run.message = log.mask(result.message)[:2000]
    run.resume_at = result.resume_at
    if rollback_state is None:
        run.state = result.state
    if result.status not in (R.WAITING, R.PAUSED):
        run.finished_at = timezone.now()
    with transaction.atomic():
        run.save(update_fields=["log", "status", "exit_code", "message", "resume_at", "state", "finished_at"])
        if result.status == R.SUCCEEDED and kind.name == "switch_traffic":
            weight = params["previous_weight"] if rollback_state is not None else params["weight"]
            traffic_switched(deployment=deployment, slot=params["slot"], weight=weight)
        if result.status == R.SUCCEEDED and kind.installs and target is not None:
            if rollback_state is None and result.installed and deployment.plan["release"]["artifacts"]:
                artifact_id = deployment.plan["release"]["artifacts"][0]["id"]
                inventory.record_installation(deployment=deployment, target_id=target["id"], artifact_id=artifact_id)
            elif rollback_state is not None:
                inventory.record_rollback(deployment=deployment, target_id=target["id"])
    return result


def _traffic_changed(deployment: Deployment) -> str:
    """Why the environment's traffic is no longer as the plan assumed ("" when it is). Checked at the start of
    each phase up to the plan's first switch."""
    plan = deployment.plan
    expects = plan["phases"][deployment.phase].get("expects")
    environment = deployment.environment
    if (
        not expects
        or deployment.step != phase_steps(plan, deployment.phase)[0]
        or (environment.live_slot, environment.idle_weight) == (expects["live_slot"], expects["idle_weight"])
    ):
        return ""
    return (
        f"The live slot of {environment.name} changed since this plan was made "
        f"(planned: {expects['live_slot'] or 'none'}, now: {environment.live_slot or 'none'}"
        f"{f', {environment.idle_weight}% to the idle slot' if environment.idle_weight else ''}). "
        "Request a new deployment."
    )


def _run_deploy_unit(deployment: Deployment, owner: str) -> Outcome:
    plan = deployment.plan
    if changed := _traffic_changed(deployment):
        return Outcome("failed", changed)
    step = plan["steps"][deployment.step]
    kind = steps.get(step["kind"])
    names = plan["phases"][deployment.phase]["targets"] if step["scope"] == "target" else [""]
    runs = _unit_runs(deployment, "deploy", names, step["name"], step["kind"])
    secrets = _secrets(deployment)
    for name in names:
        run = runs[name]
        if run.status in DONE_STATUSES:
            continue
        target = plan["targets"][name] if name else None
        params = target["params"][deployment.step] if target else step["params"]
        if params is None:
            StepRun.objects.filter(pk=run.pk).update(
                status=R.SKIPPED, message="No health check URL.", finished_at=timezone.now()
            )
            continue
        if run.status == R.WAITING and run.resume_at and run.resume_at > timezone.now():
            return Outcome("waiting", resume_at=run.resume_at)
        result = _execute(deployment, run, kind, params, target, owner=owner, secrets=secrets)
        where = f"{run.name}" + (f" on {name}" if name else "")
        # run.message, not result.message: the run's copy has the secrets masked.
        if result.status == R.FAILED:
            return Outcome("failed", f"{where} failed: {run.message or 'no message'}")
        if result.status == R.WAITING:
            seen = run.signals[-1].get("id", "") if kind.signals and run.signals else ""
            return Outcome(
                "waiting", resume_at=result.resume_at or timezone.now(), run=run.pk if kind.signals else None, seen=seen
            )
        if result.status == R.PAUSED:
            return Outcome("paused", f"{where}: {run.message}")
    return Outcome("done")


def _run_rollback_unit(deployment: Deployment, owner: str) -> Outcome:
    """Undo one step on every target where it succeeded (or once, for a batch step), in this phase."""
    plan = deployment.plan
    step = plan["steps"][deployment.step]
    kind = steps.get(step["kind"])
    if not undoes(step):
        return Outcome("done")
    done = list(undoable_runs(deployment).filter(phase=deployment.phase, step=deployment.step).order_by("target_name"))
    runs = _unit_runs(deployment, "rollback", [d.target_name for d in done], f"Undo {step['name']}", step["kind"])
    secrets = _secrets(deployment)
    for deployed in done:
        run = runs[deployed.target_name]
        if run.status in DONE_STATUSES:
            continue
        target = plan["targets"][deployed.target_name] if deployed.target_name else None
        params = target["params"][deployment.step] if target else step["params"]
        result = _execute(
            deployment, run, kind, params, target, owner=owner, secrets=secrets, rollback_state=deployed.state
        )
        if result.status != R.SUCCEEDED:
            where = f" on {deployed.target_name}" if deployed.target_name else ""
            return Outcome("failed", f"Rolling back {step['name']}{where} failed: {run.message}")
    return Outcome("done")


# --- Recording the outcome -----------------------------------------------------------------------------


def _next_cursor(deployment: Deployment) -> tuple[int, int] | None:
    """The unit after the current one: forwards through the phases' steps, or backwards when rolling back.
    Phases without steps are passed over."""
    plan = deployment.plan
    direction = -1 if deployment.mode == "rollback" else 1
    phase = deployment.phase
    indices = phase_steps(plan, phase)
    position = indices.index(deployment.step) + direction if deployment.step in indices else len(indices)
    while not 0 <= position < len(indices):
        phase += direction
        if not 0 <= phase < len(plan["phases"]):
            return None
        indices = phase_steps(plan, phase)
        position = 0 if direction > 0 else len(indices) - 1
    return phase, indices[position]


def _record(deployment_id: int, owner: str, outcome: Outcome, mode: str) -> None:
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("environment", "release")
            .get(pk=deployment_id)
        )
        if deployment.lease_owner != owner or deployment.status != S.RUNNING:
            return  # the lease was lost (taken over after expiry) or the deployment ended meanwhile
        now = timezone.now()
        Deployment.objects.filter(pk=deployment.pk).update(lease_owner="", lease_expires_at=None, unit_attempts=0)
        if deployment.mode != mode:  # someone asked for a rollback while this unit ran: it starts here
            schedule(deployment)
        elif outcome.kind == "failed":
            _fail(deployment, outcome.message)
        elif deployment.cancel_requested and deployment.mode == "deploy":
            services.transition(deployment, S.CANCELLED, reason="Cancelled; stopped after the unit in progress.")
        elif outcome.kind == "waiting":
            if outcome.run and _signalled(outcome.run, outcome.seen, now):
                outcome.resume_at = now
            Deployment.objects.filter(pk=deployment.pk).update(next_run_at=outcome.resume_at)
            if outcome.resume_at - now <= timedelta(seconds=WAKE_AHEAD):  # a short wait: no need to wait for beat
                schedule(deployment, at=outcome.resume_at)
        elif outcome.kind == "paused":
            services.transition(deployment, S.PAUSED, reason=outcome.message)
        else:
            _move_on(deployment, now)


def _signalled(run_id: int, seen: str, now: datetime) -> bool:
    """Whether a signal arrived for the step run since it last ran; if so it is due again now. Called with the
    deployment locked: a webhook either committed before (and is seen here) or waits for the lock and then
    finds the deployment ownerless, and wakes it itself (apps.gitops.services.webhook_receive)."""
    signals = StepRun.objects.filter(pk=run_id).values_list("signals", flat=True).first() or []
    if not signals or signals[-1].get("id", "") == seen:
        return False
    StepRun.objects.filter(pk=run_id).update(resume_at=now)
    return True


def _fail(deployment: Deployment, message: str) -> None:
    """A unit failed: roll the updated targets back when the strategy says so, else the deployment fails."""
    rollback = deployment.strategy_options.get("rollback_on_failure")
    if deployment.mode == "deploy" and rollback and has_undo_work(deployment):
        Deployment.objects.filter(pk=deployment.pk).update(mode="rollback", cancel_requested=False)
        deployment.mode = "rollback"
        deployment.status_reason = f"{message} Rolling back."
        deployment.save(update_fields=["status_reason", "updated_at"])
        schedule(deployment)
    else:
        services.transition(deployment, S.FAILED, reason=message)


def _move_on(deployment: Deployment, now) -> None:
    """The unit is done: the next one now (or after the strategy's pause), or the end."""
    cursor = _next_cursor(deployment)
    if cursor is None:
        final = S.ROLLED_BACK if deployment.mode == "rollback" else S.SUCCEEDED
        with transaction.atomic():
            services.transition(deployment, final, reason=deployment.status_reason if final == S.ROLLED_BACK else "")
            if final == S.SUCCEEDED:
                inventory.record_deployed(deployment)
        return
    phase, step = cursor
    pause = deployment.plan["strategy"].get("pause_seconds", 0)  # rolling: between batches
    delay = (
        now + timedelta(seconds=pause) if deployment.mode == "deploy" and phase != deployment.phase and pause else None
    )
    Deployment.objects.filter(pk=deployment.pk).update(phase=phase, step=step, next_run_at=delay)
    deployment.phase, deployment.step = phase, step
    if delay is None:
        schedule(deployment)


def advance(deployment_id: int) -> None:
    """Run the deployment's next unit of work if it is due and unclaimed (the `deployments.advance` task)."""
    owner = _owner()
    deployment = claim(deployment_id, owner)
    if deployment is None:
        return
    mode = deployment.mode
    runner = _run_rollback_unit if mode == "rollback" else _run_deploy_unit
    try:
        outcome = runner(deployment, owner)
    except LeaseLost:
        logger.warning("deployment %s: lease lost to another worker; stopping this unit", deployment_id)
        return
    except Exception:
        logger.exception("deployment %s: unit failed unexpectedly", deployment_id)
        outcome = Outcome("failed", "The engine failed while running this unit; see the worker's log.")
    _record(deployment_id, owner, outcome, mode)


# --- Beat ----------------------------------------------------------------------------------------------


def dispatch() -> int:
    """Start due scheduled and queued deployments; enqueue running ones that are due or whose lease
    expired. Cheap when there is nothing to do: three indexed queries."""
    now = timezone.now()
    handed = 0
    with transaction.atomic():
        due = Deployment.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=S.SCHEDULED, scheduled_for__lte=now
        )
        for deployment in due.select_related("environment", "release"):
            services.transition(deployment, S.QUEUED, reason="Its scheduled time has come.")
    environments = (
        Deployment.objects.filter(status=S.QUEUED)
        .exclude(environment_id__in=Deployment.objects.filter(status__in=ACTIVE_STATUSES).values("environment_id"))
        .values_list("environment_id", flat=True)
        .distinct()
    )
    for environment_id in list(environments):
        with transaction.atomic():
            if services.start_next_queued(environment_id):
                handed += 1
    # Due (a wait ended, a message was lost) or stalled (the lease holder died).
    running = Deployment.objects.filter(status=S.RUNNING)
    stalled = (
        running.filter(lease_expires_at__lt=now)
        | running.filter(lease_expires_at__isnull=True, next_run_at__lte=now)
        | running.filter(lease_expires_at__isnull=True, next_run_at__isnull=True)
    )
    for deployment in stalled.only("pk", "plan", "phase", "step", "lease_owner"):
        if deployment.lease_owner:  # a dead worker's lease: the claim recovers it
            enqueue(deployment.pk, unit_budget(deployment))
        else:
            with transaction.atomic():
                schedule(deployment)
        handed += 1
    return handed
