"""Reads of deployments and templates: permission-filtered, with what lists and pages show in one go."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.catalog.models import Application
from apps.core.errors import NotFound
from apps.core.history import HistoryEntry, history_entries, newest_first
from apps.core.permissions import restrict
from apps.environments.models import Environment

from .models import Deployment, DeploymentStatus, DeploymentTemplate, StepRun, TemplateVersion
from .plans import phase_steps, undoes


def deployments_visible_to(user) -> QuerySet[Deployment]:
    """Deployments of environments and applications the user may view, newest first."""
    return (
        Deployment.objects.filter(
            environment__in=restrict(Environment.objects.all(), user),
            application__in=restrict(Application.objects.all(), user),
        )
        .select_related("environment", "application", "release", "created_by", "template_version__template")
        .defer("plan")
        .order_by("-created_at", "-id")
    )


def deployment_for(user, pk) -> Deployment:
    """One visible deployment with its plan; NotFound otherwise."""
    try:
        return deployments_visible_to(user).defer(None).get(pk=pk)
    except (Deployment.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such deployment.") from None


def step_runs_of(deployment: Deployment, *, with_logs: bool = False) -> QuerySet[StepRun]:
    """The deployment's step runs in execution order (logs left out unless asked for)."""
    runs = StepRun.objects.filter(deployment=deployment).order_by("action", "phase", "step", "target_name")
    return runs if with_logs else runs.defer("log")


def phases_of(deployment: Deployment, runs) -> list[dict]:
    """The plan's phases with, per target (or batch), the run of each of the phase's steps: what the
    deployment page draws.

    [{"name", "steps": [plan step index...], "rows": [{"name", "runs": [StepRun | None per phase step]}],
      "rollback": [StepRun...]}]
    """
    plan = deployment.plan
    by_key = {(r.action, r.phase, r.step, r.target_name): r for r in runs}
    phases = []
    for index, phase in enumerate(plan["phases"]):
        indices = phase_steps(plan, index)
        rows = []
        if any(plan["steps"][i]["scope"] == "batch" for i in indices):
            runs_of_batch = [
                by_key.get(("deploy", index, i, "")) if plan["steps"][i]["scope"] == "batch" else None for i in indices
            ]
            rows.append({"name": "", "runs": runs_of_batch})
        for name in phase["targets"]:
            rows.append(
                {
                    "name": name,
                    "runs": [
                        None if plan["steps"][i]["scope"] == "batch" else by_key.get(("deploy", index, i, name))
                        for i in indices
                    ],
                }
            )
        rollback = [r for r in runs if r.action == "rollback" and r.phase == index]
        phases.append({"name": phase["name"], "steps": indices, "rows": rows, "rollback": rollback})
    return phases


def templates_visible_to(user) -> QuerySet[DeploymentTemplate]:
    """Templates hold no environment values, so every signed-in user may read them."""
    if user is None or not user.is_authenticated:
        return DeploymentTemplate.objects.none()
    latest = TemplateVersion.objects.order_by("-number")
    return DeploymentTemplate.objects.prefetch_related(Prefetch("versions", queryset=latest)).order_by("name")


def deployment_history(deployment: Deployment) -> list[HistoryEntry]:
    """The deployment's history rows, newest first; its foreign keys shown by name. Two queries."""
    rows = list(Deployment.history.filter(id=deployment.pk).select_related("history_user"))
    version = deployment.template_version
    names = {
        "release": {deployment.release_id: deployment.release.version},
        "environment": {deployment.environment_id: deployment.environment.slug},
        "application": {deployment.application_id: deployment.application.slug},
        "template_version": {version.pk: f"{version.template.slug} v{version.number}"},
        "created_by": {deployment.created_by_id: deployment.created_by.username if deployment.created_by else ""},
    }

    def shown(field_name, value):
        return names[field_name].get(value, value) if field_name in names else value

    return newest_first(history_entries(rows, subject="deployment", label=lambda r: f"#{r.id}", values=shown))


def previous_success(deployment: Deployment) -> Deployment | None:
    """The last successful deployment of this application to this environment before `deployment`, of another
    release: what a rollback goes back to."""
    return (
        Deployment.objects.filter(
            environment_id=deployment.environment_id,
            application_id=deployment.application_id,
            status=DeploymentStatus.SUCCEEDED,
            created_at__lt=deployment.created_at,
        )
        .exclude(release_id=deployment.release_id)
        .select_related("release__application", "template_version")
        .order_by("-finished_at", "-id")
        .first()
    )


def undoable_runs(deployment: Deployment):
    """The deploy step runs a rollback undoes: those that succeeded, and those that changed something before they
    failed or while they wait (StepResult.state["changed"]: a gitops_commit that pushed, then was not synced)."""
    return StepRun.objects.filter(deployment=deployment, action="deploy").filter(
        Q(status="succeeded") | Q(state__changed=True)
    )


def has_undo_work(deployment: Deployment) -> bool:
    """Whether rolling the deployment back would undo anything: a step that rollback undoes changed something."""
    undone = [i for i, step in enumerate(deployment.plan["steps"]) if undoes(step)]
    return undoable_runs(deployment).filter(step__in=undone).exists()
