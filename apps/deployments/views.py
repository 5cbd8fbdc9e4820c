"""Deployment pages: the list, one deployment (live progress, its approval, plan, history) with its controls,
step logs, and the deployment templates (list, detail with versions, create and edit).

Pages read through selectors and the API's FilterSet, and write only through services: a domain
error becomes a message or a form error. A deployment the user may not view is a 404. The
plan and the logs only ever hold secret references and masked values; the pages escape them
and show each reference as a masked badge.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from apps.accounts.models import Team
from apps.approvals import services as approvals
from apps.approvals.forms import DecisionForm
from apps.approvals.models import ApprovalRequest, RequestStatus, Verdict
from apps.approvals.selectors import request_for
from apps.catalog.selectors import applications_visible_to
from apps.core.errors import NotFound, PermissionDenied, ReleaseHubError, ValidationFailed
from apps.core.permissions import can
from apps.core.ui import call_service, form_add_domain_error, page_or_fragment, query_without_page
from apps.environments.selectors import environments_visible_to
from apps.gitops.cards import gitops_cards
from apps.inventory.selectors import current_installations
from apps.policies import services as policies
from apps.policies.services import NOT_STARTED, rule_key
from apps.releases.selectors import release_for

from . import services
from . import steps as step_kinds
from .engine.strategies import describe
from .filters import DeploymentFilterSet
from .forms import DeploymentTemplateForm, ResumeForm
from .models import ACTIVE_STATUSES, Deployment, DeploymentStatus, DeploymentTemplate, StepRun, StepRunStatus
from .plans import SECRET_REFERENCE, current_step
from .selectors import (
    deployment_for,
    deployment_history,
    deployments_visible_to,
    has_undo_work,
    phases_of,
    previous_success,
    step_runs_of,
    templates_visible_to,
)

PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 50
ADD_TEMPLATE = "deployments.add_deploymenttemplate"
CHANGE_TEMPLATE = "deployments.change_deploymenttemplate"

S = DeploymentStatus
# Which control a state allows (the services decide in the end; these only choose the buttons shown).
CANCELLABLE = {S.PENDING_APPROVAL, S.QUEUED, S.SCHEDULED, S.RUNNING, S.PAUSED}
ROLLBACK_FROM = {S.SUCCEEDED, S.FAILED, S.CANCELLED}  # a rolled-back one already went back
# A step run whose clock still runs, and one whose log may still grow.
RUN_UNFINISHED = {StepRunStatus.RUNNING, StepRunStatus.WAITING, StepRunStatus.PAUSED}
RUN_LOGGING = {StepRunStatus.PENDING, StepRunStatus.RUNNING, StepRunStatus.WAITING}
RUN_DONE = {StepRunStatus.SUCCEEDED, StepRunStatus.SKIPPED}
# What Promote does, by the kind of the step it ends early.
PROMOTE_LABELS = {"analysis": "Promote", "wait": "Finish the wait", "manual_intervention": "Continue"}

TEMPLATE_ASIDE = {
    "title": "Good to know",
    "text": [
        "Templates hold no environment-specific values: those live in each environment's variables and targets "
        "and are bound when a deployment is planned, so one template deploys to every environment.",
        "A name a template uses that the environment does not define is refused when the deployment is requested, "
        "not while it runs.",
    ],
}


# --- Small helpers -------------------------------------------------------------------------------------


def _visible(request: HttpRequest, pk: int) -> Deployment:
    """The deployment with its plan if the user may view it, else 404 (its existence stays hidden)."""
    try:
        return deployment_for(request.user, pk)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def duration(start: datetime | None, end: datetime | None) -> str:
    """A short human duration: "< 0.1 s", "0.4 s", "12 s", "3 min 5 s", "2 h 10 min"; "" without a start or an end."""
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0)
    if seconds < 0.1:
        return "< 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _secret_badge(name: str) -> str:
    return format_html(
        '<span class="badge rh-secret" data-testid="secret-ref" title="Secret variable {}: the worker substitutes '
        'its value while the step runs; it is never shown">'
        '<i class="bi bi-lock-fill me-1" aria-hidden="true"></i>{} <span class="rh-mask">••••••</span></span>',
        name,
        name,
    )


def masked_html(text: str) -> SafeString:
    """`text` escaped, with each secret reference (⟦secret:NAME⟧) shown as a masked badge."""
    return mark_safe(SECRET_REFERENCE.sub(lambda match: _secret_badge(match.group(1)), str(escape(text))))  # noqa: S308


def json_html(value: Any) -> SafeString:
    """A JSON value pretty-printed and escaped, secret references as masked badges (for a <pre>)."""
    return masked_html(json.dumps(value, indent=2, ensure_ascii=False))


def _value_html(value: Any) -> SafeString:
    return masked_html(value) if isinstance(value, str) else json_html(value)


# --- Deployment list -----------------------------------------------------------------------------------


@login_required
def deployment_list(request):
    """Visible deployments, newest first, filtered with the API's DeploymentFilterSet; 50 a page."""
    filterset = DeploymentFilterSet(request.GET or None, queryset=deployments_visible_to(request.user))
    deployments = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    release = None
    if request.GET.get("release"):
        try:
            release = release_for(request.user, request.GET["release"])
        except NotFound:
            release = None
    context = {
        "filterset": filterset,
        "page": Paginator(deployments, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query_without_page(request),
        "filtered": any(request.GET.get(name) for name in filterset.filters),
        "environments": environments_visible_to(request.user).order_by("name"),
        "applications": applications_visible_to(request.user),
        "statuses": DeploymentStatus.choices,
        "release": release,
        "section": "deployments",
    }
    return page_or_fragment(request, "deployments/list.html", "deployments/_results.html", context)


# --- One deployment ------------------------------------------------------------------------------------


def _controls(request: HttpRequest, deployment: Deployment) -> dict[str, Any]:
    """The buttons to show: the user holds `deploy` on the environment and the state allows the action."""
    may_deploy = can(request.user, "deploy", deployment.environment)
    status = deployment.status
    rollback_to = earlier = None
    if may_deploy and status in ROLLBACK_FROM:
        earlier = previous_success(deployment)
        rollback_to = earlier.release if earlier else None
    forwards = may_deploy and status in (S.RUNNING, S.PAUSED) and deployment.mode == "deploy"
    step = current_step(deployment)
    controls = {
        "cancel": may_deploy and status in CANCELLABLE and not deployment.cancel_requested,
        "resume": may_deploy and status == S.PAUSED,
        "retry": may_deploy
        and status == S.FAILED
        and deployment.mode == "deploy"
        and deployment.started_at is not None,
        "rollback_to": rollback_to,
        # A slot to switch back to without redeploying (blue/green), when the rollback would do only that.
        "switch_back": services.switch_back_slot(deployment, earlier) if rollback_to else "",
        "promote": forwards and step.get("kind") in services.PROMOTABLE and step.get("scope") == "batch",
        "promote_label": PROMOTE_LABELS.get(step.get("kind"), "Promote"),
        "roll_back_now": forwards and has_undo_work(deployment),
        "override_freeze": status == S.QUEUED
        and deployment.status_reason.startswith("Frozen by")
        and not deployment.freeze_override
        and can(request.user, "manage", deployment.environment),
    }
    controls["any"] = any(controls.values())
    controls["may_deploy"] = may_deploy
    return controls


def _base_context(request: HttpRequest, deployment: Deployment, tab: str) -> dict[str, Any]:
    plan = deployment.plan
    digest = deployment.plan_digest
    return {
        "deployment": deployment,
        "tab": tab,
        "controls": _controls(request, deployment),
        "resume_form": ResumeForm(),
        "strategy_options": sorted(deployment.strategy_options.items()),
        "strategy_summary": describe(plan["strategy"]),
        "template_ref": plan.get("template", {}),
        "digest_short": f"{digest[:12]}…" if digest else "",
        "rollbacks": list(deployments_visible_to(request.user).filter(rollback_of=deployment).order_by("id")),
        "audit_query": urlencode({"object_type": "deployments.deployment", "object_id": deployment.pk}),
        "ahead": _ahead(deployment),
        **_override_context(request, deployment),
    }


def _ahead(deployment: Deployment) -> Deployment | None:
    """What a queued deployment waits for: the active deployment of its environment, or an older queued one
    that something holds (a freeze, a policy, an override waiting for its second person)."""
    if deployment.status != S.QUEUED:
        return None
    return (
        Deployment.objects.filter(environment_id=deployment.environment_id)
        .filter(Q(status__in=ACTIVE_STATUSES) | Q(status=S.QUEUED, queued_at__lt=deployment.queued_at))
        .order_by(F("queued_at").asc(nulls_first=True), "id")
        .only("id", "status", "status_reason")
        .first()
    )


def _override_context(request: HttpRequest, deployment: Deployment) -> dict[str, Any]:
    """The deployment's policy overrides, the failed rules the user may override (`manage`, not started yet)
    and the overrides waiting for the user as their second person."""
    if not deployment.policy_results:
        return {}
    overrides = list(deployment.policy_overrides.select_related("requested_by", "confirmed_by"))
    may_manage = deployment.status in NOT_STARTED and can(request.user, "manage", deployment.environment)
    failing = {
        rule_key(r["policy_set"], r["kind"])
        for r in deployment.policy_results
        if not r["passed"] and r["overridable"] and not r.get("overridden")
    }
    for override in overrides:
        override.may_confirm = may_manage and not override.effective and override.requested_by_id != request.user.pk
        failing -= set(override.rules)
    return {"policy_overrides": overrides, "overridable_rules": sorted(failing) if may_manage else []}


def _progress(deployment: Deployment, runs: list[StepRun]) -> dict[str, Any]:
    """The Progress section: per phase, rows (a batch row, then one per target) by the phase's steps, each cell
    the step's run or nothing; the rollback runs of each phase; how many cells are done."""
    plan_steps = deployment.plan["steps"]
    now = timezone.now()
    for run in runs:
        run.duration = duration(run.started_at, run.finished_at or (now if run.status in RUN_UNFINISHED else None))
    phases = []
    expected = done = 0
    for index, phase in enumerate(phases_of(deployment, runs)):
        steps = [{**plan_steps[i], "number": i + 1} for i in phase["steps"]]
        rows = []
        for row in phase["rows"]:
            batch_row = row["name"] == ""
            cells = []
            for step, run in zip(steps, row["runs"], strict=True):
                applies = (step["scope"] == "batch") == batch_row
                expected += applies
                done += bool(run is not None and run.status in RUN_DONE)
                cells.append({"run": run, "applies": applies, "step": step})
            rows.append({"name": row["name"], "batch": batch_row, "cells": cells})
        phases.append(
            {
                "index": index,
                "name": phase["name"],
                "steps": steps,
                "rows": rows,
                "rollback": phase["rollback"],
                "targets": deployment.plan["phases"][index]["targets"],
            }
        )
    return {
        "phases": phases,
        "runs_done": done,
        "runs_expected": expected,
        "percent": round(100 * done / expected) if expected else 0,
        "duration": duration(deployment.started_at, deployment.finished_at or (now if deployment.started_at else None)),
    }


def _changes(deployment: Deployment) -> list[dict[str, Any]]:
    """What approving changes: per target of the plan, the version of the application that runs there now
    (inventory) and the one this release installs (its primary artifact). One query."""
    release = deployment.plan["release"]
    new = release["artifacts"][0]["version"] if release["artifacts"] else release["version"]
    now = {
        installation.target_id: installation
        for installation in current_installations(
            environment_id=deployment.environment_id, application_id=deployment.application_id
        )
    }
    rows = []
    for name, target in sorted(deployment.plan["targets"].items()):
        installed = now.get(target.get("id"))
        current = installed.artifact.version if installed else None
        rows.append(
            {
                "target": name,
                "address": target.get("address", ""),
                "current": current,
                "since": installed.since if installed else None,
                "new": new,
                "changed": current != new,
            }
        )
    return rows


def _approval(request: HttpRequest, deployment: Deployment, feedback: dict | None = None) -> dict[str, Any] | None:
    """The approval panel, None when the deployment needs no approval: the request, its decisions (with their
    people), how many approved, the user's own decision, whether they may decide now and, if not, why (the
    service's rules); while it waits, what changes on each target. A constant number of queries."""
    approval: ApprovalRequest | None = request_for(deployment)
    if approval is None:
        return None
    decisions = list(approval.decisions.all())
    approved = sum(decision.verdict == Verdict.APPROVE for decision in decisions)
    mine = next((decision for decision in decisions if decision.user_id == request.user.pk), None)
    pending = approval.status == RequestStatus.PENDING and deployment.status == S.PENDING_APPROVAL
    reason = approvals.why_not_eligible(request.user, deployment, approval) if pending and mine is None else None
    teams = []
    if approval.eligible_team_ids:
        teams = list(Team.objects.filter(pk__in=approval.eligible_team_ids).order_by("name"))
    required = approval.required_approvals
    return {
        "request": approval,
        "decisions": decisions,
        "approved": approved,
        "required": required,
        "remaining": max(required - approved, 0),
        "percent": min(100, round(100 * approved / required)) if required else 100,
        "mine": mine,
        "pending": pending,
        "overdue": pending and approval.expires_at is not None and approval.expires_at <= timezone.now(),
        "reason": reason,
        "may_decide": pending and mine is None and reason is None,
        "teams": teams,
        "digest_short": f"{approval.plan_digest[:12]}…",
        "changes": _changes(deployment) if pending else [],
        "feedback": feedback or {},
        # A decision's answer shows what the server says; a poll keeps what the browser shows (hx-preserve):
        # the comment being typed, and the error of the last decision until the next one.
        "fresh": feedback is not None,
        "comment_max": approvals.COMMENT_MAX,
    }


def _slots(deployment: Deployment) -> list[dict[str, Any]]:
    """Blue/green slots as they are now: live or idle, their share of traffic, the versions their targets run
    (of this deployment's application) and how many targets they have. One query."""
    environment = deployment.environment
    versions: dict[str, set[str]] = {"blue": set(), "green": set()}
    counts = dict.fromkeys(versions, 0)
    for target in environment.targets.all():
        if target.slot in counts:
            counts[target.slot] += 1
    installed = current_installations(environment_id=environment.pk, application_id=deployment.application_id)
    for installation in installed:
        if installation.target.slot in versions:
            versions[installation.target.slot].add(installation.artifact.version)
    live = environment.live_slot
    slots = []
    for name in ("blue", "green"):
        share = (100 - environment.idle_weight if name == live else environment.idle_weight) if live else 0
        slots.append(
            {
                "name": name,
                "live": name == live,
                "share": share,
                "versions": sorted(versions[name]),
                "targets": counts[name],
                "new": any(phase.get("slot") == name for phase in deployment.plan["phases"]),
            }
        )
    return slots


def _chart(samples: list[dict]) -> list[dict[str, Any]]:
    """Bars of an analysis chart (viewBox 0 0 6*len 30): per probe round, healthy probes in green under the
    failed ones in red, with a tooltip."""
    bars = []
    for index, sample in enumerate(samples):
        probes = sample.get("probes") or 1
        failed = round(30 * sample.get("failures", 0) / probes, 2)
        bars.append(
            {
                "x": index * 6,
                "failed": failed,
                "ok": round(30 - failed, 2),
                "title": f"{sample.get('at', 0):.1f}s: {sample.get('failures', 0)} of {probes} failed"
                + "".join(f"\n{problem}" for problem in sample.get("failed", [])),
            }
        )
    return bars


def _rollout(deployment: Deployment, runs: list[StepRun]) -> dict[str, Any] | None:
    """What the rollout panel draws for blue/green and canary deployments: the slots, and per stage its weight,
    state, and its analysis gate (probe rounds as a chart, time left). None for other strategies."""
    plan = deployment.plan
    if not any("weight" in phase for phase in plan["phases"]):
        return None
    analyses = {r.phase: r for r in runs if r.kind == "analysis" and r.action == "deploy"}
    waits = {r.phase: r.resume_at for r in runs if r.status == StepRunStatus.WAITING and r.kind == "wait"}
    ran = {r.phase for r in runs if r.action == "deploy"}
    unfinished = {r.phase for r in runs if r.action == "deploy" and r.status not in RUN_DONE}
    reverted = {r.phase for r in runs if r.action == "rollback"}
    undone = deployment.mode == "rollback" or deployment.status == S.ROLLED_BACK
    now = timezone.now()
    stages = []
    for index, phase in enumerate(plan["phases"]):
        if deployment.status == S.SUCCEEDED:
            state = "done"
        elif undone:  # what the rollback undid; what it kept (blue/green keeps installs); what never ran
            state = (
                "undone"
                if index in reverted
                else "stopped"
                if index in unfinished
                else "done"
                if index in ran
                else "skipped"
            )
        elif index != deployment.phase:
            state = "done" if index < deployment.phase else "pending"
        else:
            state = "stopped" if deployment.is_final else "current"
        run = analyses.get(index)
        analysis = None
        if run is not None:
            params = plan["steps"][run.step]["params"]
            progress = run.state or {}
            started = progress.get("started")
            ends = datetime.fromisoformat(started) + timedelta(seconds=params["seconds"]) if started else None
            analysis = {
                "run": run,
                "probes": progress.get("probes", 0),
                "failures": progress.get("failures", 0),
                "bars": _chart(progress.get("samples", [])),
                "width": max(6 * len(progress.get("samples", [])), 6),
                "seconds": params["seconds"],
                "left": duration(now, ends) if run.status == StepRunStatus.WAITING and ends and ends > now else "",
                "limit": params.get("max_failure_ratio", 0.1),
            }
        wait_ends = waits.get(index)
        stages.append(
            {
                "index": index,
                "name": phase["name"],
                "weight": phase.get("weight"),
                "state": state,
                "analysis": analysis,
                "left": duration(now, wait_ends) if wait_ends and wait_ends > now else "",
            }
        )
    slotted = any("slot" in phase for phase in plan["phases"])  # it moves traffic between slots
    return {"stages": stages, "slots": _slots(deployment) if slotted else None}


def _live_context(request: HttpRequest, deployment: Deployment, feedback: dict | None = None) -> dict[str, Any]:
    context = _base_context(request, deployment, "progress")
    runs = list(step_runs_of(deployment))
    context.update(_progress(deployment, runs), live=not deployment.is_final)
    context["rollout"] = _rollout(deployment, runs)
    context["gitops"] = gitops_cards(deployment.plan, runs)  # pull mode: the repository, commit and sync
    context["approval"] = _approval(request, deployment, feedback)
    return context


@login_required
def deployment_detail(request, pk: int):
    """Status, controls, approval, details and live progress (polled while the deployment has not ended)."""
    deployment = _visible(request, pk)
    return render(request, "deployments/detail.html", _live_context(request, deployment))


@login_required
def deployment_progress(request, pk: int):
    """The live part of the detail page, polled every 2 s; without the polling trigger once it has ended."""
    deployment = _visible(request, pk)
    return render(request, "deployments/_live.html", _live_context(request, deployment))


@login_required
def run_log(request, pk: int, run_id: int):
    """One step run's log as an escaped <pre> (masked by the engine already); refreshes itself while it grows."""
    deployment = _visible(request, pk)
    run = get_object_or_404(step_runs_of(deployment, with_logs=True), pk=run_id)
    now = timezone.now()
    context = {
        "deployment": deployment,
        "run": run,
        "duration": duration(run.started_at, run.finished_at or (now if run.status in RUN_UNFINISHED else None)),
        "live": not deployment.is_final and run.status in RUN_LOGGING,
    }
    return render(request, "deployments/_log.html", context)


def _plan_view(plan: dict) -> dict[str, Any]:
    """The plan in the shape the Plan tab draws: strategy, phases, steps, and per target its variables and each
    step's rendered parameters, every value escaped and secret references as masked badges."""
    steps = []
    for index, step in enumerate(plan["steps"]):
        kind = step_kinds.REGISTRY.get(step["kind"])
        steps.append(
            {
                "number": index + 1,
                "name": step["name"],
                "kind": step["kind"],
                "kind_title": kind.title if kind else step["kind"],
                "scope": step["scope"],
                "idempotent": step["idempotent"],
                "params": json_html(step["params"]) if "params" in step else None,
            }
        )
    targets = []
    for name, target in plan["targets"].items():
        params = []
        for step, rendered in zip(steps, target.get("params", []), strict=False):
            params.append({"step": step, "params": json_html(rendered) if rendered is not None else None})
        targets.append(
            {
                "name": name,
                "address": target.get("address", ""),
                "path": target.get("path", ""),
                "slot": target.get("slot", ""),
                "health_check_url": target.get("health_check_url", ""),
                "variables": [(key, _value_html(value)) for key, value in sorted(target.get("variables", {}).items())],
                "params": params,
            }
        )
    strategy = dict(plan["strategy"])
    return {
        "strategy_name": strategy.pop("name", ""),
        "strategy_options": sorted(strategy.items()),
        "phases": plan["phases"],
        "steps": steps,
        "targets": targets,
        "release": plan["release"],
        "environment": plan["environment"],
        "json": json_html(plan),
    }


@login_required
def deployment_plan(request, pk: int):
    """The frozen plan: strategy, phases, steps and, per target, its variables and rendered parameters."""
    deployment = _visible(request, pk)
    context = _base_context(request, deployment, "plan")
    context["plan"] = _plan_view(deployment.plan)
    return render(request, "deployments/plan.html", context)


@login_required
def deployment_history_tab(request, pk: int):
    """Who changed the deployment's status, when and through which channel."""
    deployment = _visible(request, pk)
    context = _base_context(request, deployment, "history")
    context["page"] = Paginator(deployment_history(deployment), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "deployments/history.html", context)


# --- Controls ------------------------------------------------------------------------------------------


def _back(deployment: Deployment) -> HttpResponse:
    return redirect("deployments:detail", pk=deployment.pk)


@login_required
@require_POST
def deployment_cancel(request, pk: int):
    deployment = _visible(request, pk)
    try:
        deployment = services.deployment_cancel(actor=request.user, deployment=deployment)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
    else:
        if deployment.status == S.CANCELLED:
            messages.success(request, f"{deployment} cancelled.")
        else:
            messages.success(request, f"Cancel requested: {deployment} stops once the step in progress ends.")
    return _back(deployment)


@login_required
@require_POST
def deployment_resume(request, pk: int):
    deployment = _visible(request, pk)
    form = ResumeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The comment is too long: at most 1000 characters.")
        return _back(deployment)
    done = f"{deployment} resumed."
    comment = form.cleaned_data["comment"]
    call_service(request, services.deployment_resume, done, actor=request.user, deployment=deployment, comment=comment)
    return _back(deployment)


@login_required
@require_POST
def deployment_retry(request, pk: int):
    deployment = _visible(request, pk)
    done = f"{deployment}: the failed step runs again."
    call_service(request, services.deployment_retry, done, actor=request.user, deployment=deployment)
    return _back(deployment)


@login_required
@require_POST
def deployment_rollback(request, pk: int):
    """Roll back: a running or paused deployment in place; an ended one with a new deployment of the previous
    successful release (or a switch back), on whose page this lands."""
    deployment = _visible(request, pk)
    try:
        rollback = services.deployment_rollback(actor=request.user, deployment=deployment)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return _back(deployment)
    if rollback.pk == deployment.pk:
        messages.success(request, f"{deployment} is rolling back.")
    else:
        messages.success(
            request, f"Rolling back {deployment.environment.name} to {rollback.release.version}: {rollback} requested."
        )
    return _back(rollback)


@login_required
@require_POST
def deployment_override_freeze(request, pk: int):
    """Start a deployment that waits for a freeze to end, with a recorded justification (`manage`)."""
    deployment = _visible(request, pk)
    done = f"{deployment} may start during the freeze."
    reason = request.POST.get("reason", "")
    call_service(
        request, services.deployment_override_freeze, done, actor=request.user, deployment=deployment, reason=reason
    )
    return _back(deployment)


@login_required
@require_POST
def deployment_override_policies(request, pk: int):
    """Override failed policy rules of a deployment that has not started, with a recorded justification."""
    deployment = _visible(request, pk)
    rules = request.POST.getlist("rules")
    done = f"{', '.join(rules)} overridden for {deployment}."
    call_service(
        request,
        policies.policy_override,
        done,
        actor=request.user,
        deployment=deployment,
        rules=rules,
        justification=request.POST.get("justification", ""),
    )
    return _back(deployment)


@login_required
@require_POST
def deployment_confirm_override(request, pk: int, override: int):
    """The second person's confirmation of a two-person policy override."""
    deployment = _visible(request, pk)
    found = get_object_or_404(deployment.policy_overrides, pk=override)
    done = f"Override of {', '.join(found.rules)} confirmed: it is in force."
    call_service(request, policies.policy_override_confirm, done, actor=request.user, override=found)
    return _back(deployment)


@login_required
@require_POST
def deployment_promote(request, pk: int):
    """End the current analysis gate, judgment or wait early."""
    deployment = _visible(request, pk)
    done = f"{deployment} promoted: it goes on to the next stage."
    call_service(request, services.deployment_promote, done, actor=request.user, deployment=deployment)
    return _back(deployment)


def _decide(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    """Approve or reject through apps.approvals.services, bound to the plan digest the page showed.

    From htmx: the live part of the page, with the service's answer in the approval panel (a field error under
    the comment, another error above the buttons), always 200 so htmx swaps it in. Without JavaScript: a
    message and back to the page."""
    deployment = _visible(request, pk)
    form = DecisionForm(request.POST)
    feedback: dict[str, Any] = {"comment": request.POST.get("comment", "")}
    try:
        if not form.is_valid():  # text the database cannot hold (a NUL character)
            raise ValidationFailed(
                "The decision could not be read.", fields={name: list(errors) for name, errors in form.errors.items()}
            )
        service(actor=request.user, deployment=deployment, **form.values())
    except ReleaseHubError as exc:
        if not request.htmx:
            messages.error(request, exc.detail)
            return _back(deployment)
        feedback["comment_errors"] = (exc.fields or {}).get("comment", [])
        feedback["error"] = "" if feedback["comment_errors"] else exc.detail
    else:
        if not request.htmx:
            messages.success(request, done.format(deployment=deployment))
            return _back(deployment)
        feedback["comment"] = ""
        deployment = _visible(request, pk)  # enough approvals move it on at once
    response = render(request, "deployments/_live.html", _live_context(request, deployment, feedback))
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_POST
def deployment_approve(request, pk: int):
    """Approve a deployment waiting for approval (needs `approve`; not its requester or its release's creator)."""
    return _decide(request, pk, approvals.approve, "You approved {deployment}.")


@login_required
@require_POST
def deployment_reject(request, pk: int):
    """Reject a deployment waiting for approval; the comment says why."""
    return _decide(request, pk, approvals.reject, "You rejected {deployment}.")


# --- Templates -----------------------------------------------------------------------------------------


def _template(request: HttpRequest, slug: str) -> DeploymentTemplate:
    return get_object_or_404(templates_visible_to(request.user), slug=slug)


def _step_kinds() -> list[dict[str, Any]]:
    """Every registered step kind with its parameters, read from its JSON Schema, for the forms' help."""
    kinds = []
    for name, kind in sorted(step_kinds.REGISTRY.items()):
        schema = kind.schema
        required = set(schema.get("required", []))
        params = []
        for param, spec in schema.get("properties", {}).items():
            if "enum" in spec:
                kind_of = "one of " + ", ".join(str(value) for value in spec["enum"])
            else:
                kind_of = spec.get("type", "any")
                if kind_of == "array" and "type" in spec.get("items", {}):
                    kind_of = f"list of {spec['items']['type']}s"
            params.append(
                {
                    "name": param,
                    "type": kind_of,
                    "required": param in required,
                    "default": json.dumps(spec["default"]) if "default" in spec else "",
                    "description": spec.get("description", ""),
                }
            )
        example = {
            "name": kind.title,
            "kind": name,
            "params": {p["name"]: spec_example(schema["properties"][p["name"]]) for p in params if p["required"]},
        }
        kinds.append(
            {
                "name": name,
                "title": kind.title,
                "description": kind.description,
                "scope": kind.scope,
                "idempotent": kind.idempotent,
                "params": params,
                "example": json.dumps(example, ensure_ascii=False),
            }
        )
    return kinds


def spec_example(spec: dict) -> Any:
    """A placeholder value for a required parameter of a step kind's example."""
    if "enum" in spec:
        return spec["enum"][0]
    return {"string": "…", "number": 30, "integer": 1, "boolean": True, "array": [], "object": {}}.get(
        spec.get("type", "string"), "…"
    )


def _template_error(form: DeploymentTemplateForm, exc: ReleaseHubError) -> None:
    """A domain error on the template form: the service names step problems `steps[2].params`; they all go on
    the steps field, as "Step 2, params: ..."."""
    fields: dict[str, list[str]] = {}
    for key, errors in (exc.fields or {}).items():
        match = re.fullmatch(r"steps\[(\d+)\](?:\.(\w+))?", key)
        if match:
            where = f"Step {match[1]}" + (f", {match[2]}" if match[2] else "")
            fields.setdefault("steps", []).extend(f"{where}: {error}" for error in errors)
        else:
            fields.setdefault(key, []).extend(errors)
    exc.fields = fields or None
    form_add_domain_error(form, exc)


def _template_form_page(request, context: dict) -> HttpResponse:
    context.update(step_kinds=_step_kinds(), aside=TEMPLATE_ASIDE, section="templates")
    return render(request, "deployments/template_form.html", context)


@login_required
def template_list(request):
    """Every template (they hold no environment values, so every signed-in user reads them), by name."""
    page = Paginator(templates_visible_to(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for template in page:
        versions = list(template.versions.all())  # prefetched, newest first
        latest = versions[0] if versions else None
        rows.append({"template": template, "latest": latest, "kinds": _kinds_of(latest.steps if latest else [])})
    context = {
        "page": page,
        "rows": rows,
        "can_create": request.user.has_perm(ADD_TEMPLATE),
        "section": "templates",
    }
    return render(request, "deployments/template_list.html", context)


def _kinds_of(steps: list[dict]) -> list[str]:
    seen: list[str] = []
    for step in steps:
        if step.get("kind") not in seen:
            seen.append(step.get("kind"))
    return seen


@login_required
def template_detail(request, slug: str):
    """The steps of one version (the latest unless ?version=N), every version with who made it and when, and
    the latest deployments planned from it."""
    template = _template(request, slug)
    versions = list(template.versions.select_related("created_by").order_by("-number"))
    shown = versions[0] if versions else None
    if request.GET.get("version"):
        shown = next((v for v in versions if str(v.number) == request.GET["version"]), None)
        if shown is None:
            raise Http404("No such version.")
    steps = []
    for index, step in enumerate(shown.steps if shown else []):
        kind = step_kinds.REGISTRY.get(step.get("kind"))
        steps.append(
            {
                "number": index + 1,
                "name": step.get("name", ""),
                "kind": step.get("kind", ""),
                "kind_title": kind.title if kind else step.get("kind", ""),
                "scope": kind.scope if kind else "",
                "params": json_html(step.get("params", {})),
            }
        )
    deployments = deployments_visible_to(request.user).filter(template_version__template=template)[:10]
    context = {
        "template": template,
        "versions": versions,
        "shown": shown,
        "steps": steps,
        "deployments": deployments,
        "can_change": request.user.has_perm(CHANGE_TEMPLATE),
        "audit_query": urlencode({"object_type": "deployments.deploymenttemplate", "object_id": template.pk}),
        "section": "templates",
    }
    return render(request, "deployments/template_detail.html", context)


@login_required
def template_create(request):
    if not request.user.has_perm(ADD_TEMPLATE):
        messages.error(request, "You may not create deployment templates; ask an administrator.")
        return redirect("deployments:template-list")
    form = DeploymentTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("deployments:template-list")
        except ReleaseHubError as exc:
            _template_error(form, exc)
        else:
            messages.success(request, f"Template “{template.name}” created as version 1.")
            return redirect("deployments:template-detail", slug=template.slug)
    return _template_form_page(request, {"form": form, "title": "New deployment template", "submit": "Create template"})


@login_required
def template_edit(request, slug: str):
    template = _template(request, slug)
    if not request.user.has_perm(CHANGE_TEMPLATE):
        messages.error(request, "You may not change deployment templates; ask an administrator.")
        return redirect("deployments:template-detail", slug=slug)
    latest = template.versions.order_by("-number").first()
    form = DeploymentTemplateForm(request.POST or None, instance=template, latest=latest)
    if request.method == "POST" and form.is_valid():
        before = template.version
        try:
            template = services.template_update(actor=request.user, template=template, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("deployments:template-detail", slug=slug)
        except ReleaseHubError as exc:
            _template_error(form, exc)
        else:
            if template.version != before:
                messages.success(request, f"Template “{template.name}” saved as version {template.version}.")
            else:
                messages.success(request, f"Template “{template.name}” saved; its steps did not change.")
            return redirect("deployments:template-detail", slug=slug)
    return _template_form_page(
        request,
        {
            "form": form,
            "template": template,
            "latest": latest,
            "title": f"Edit {template.name}",
            "submit": "Save changes",
        },
    )
