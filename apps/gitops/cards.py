"""The GitOps card of a deployment's page: where a pull-mode deployment commits, what it committed, and where it
stands (awaiting merge, awaiting sync, synced, closed without merging, failed), read from the plan and the
gitops_commit step runs the page has loaded already (no query of its own)."""

from __future__ import annotations

from typing import Any

from apps.deployments.models import StepRun
from apps.deployments.models import StepRunStatus as R

KIND = "gitops_commit"

# phase: (words, Bootstrap badge colour)
PHASES = {
    "not_started": ("Not started", "secondary"),
    "committing": ("Committing", "primary"),
    "awaiting_merge": ("Awaiting merge", "warning"),
    "awaiting_sync": ("Awaiting sync", "info"),
    "synced": ("Synced", "success"),
    "committed": ("Committed, not waiting for the sync", "success"),
    "unchanged": ("Already at this version", "success"),
    "closed": ("Closed without merging", "danger"),
    "failed": ("Failed", "danger"),
    "paused": ("Waiting for a person", "warning"),
    "interrupted": ("Interrupted", "warning"),
    "skipped": ("Skipped", "secondary"),
}


def phase_of(run: StepRun | None) -> str:
    """Where one gitops_commit step stands, from its run's status and state (the step records how it ended as
    state["outcome"]: synced, committed, unchanged, closed or sync_failed)."""
    if run is None or run.status == R.PENDING:
        return "not_started"
    state = run.state or {}
    if run.status in (R.RUNNING, R.WAITING):
        if "commit" not in state:
            return "committing"
        return "awaiting_merge" if state.get("pull_request") and not state.get("merged") else "awaiting_sync"
    outcome = state.get("outcome")
    if run.status == R.SUCCEEDED:
        return outcome if outcome in ("synced", "committed", "unchanged") else "committed"
    if run.status == R.FAILED:
        return "closed" if outcome == "closed" else "failed"
    return {R.PAUSED: "paused", R.INTERRUPTED: "interrupted", R.SKIPPED: "skipped"}.get(run.status, "failed")


def _web_url(url: Any) -> str:
    """A link only to an http(s) page (the provider's answer is not trusted with other schemes)."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""


def gitops_cards(plan: dict, runs: list[StepRun]) -> list[dict[str, Any]]:
    """One entry per gitops_commit step of the plan ([] in push mode): the repository, the manifest, the commit,
    the pull request and the phase."""
    by_step = {run.step: run for run in runs if run.kind == KIND and run.action == "deploy"}
    cards = []
    for index, step in enumerate(plan.get("steps", [])):
        if step.get("kind") != KIND:
            continue
        params = step.get("params", {})
        repository = params.get("repository", {})
        run = by_step.get(index)
        state = (run.state if run else None) or {}
        phase = phase_of(run)
        commit, revision = state.get("commit", ""), state.get("revision", "")
        cards.append(
            {
                "name": step.get("name", ""),
                "repository": repository,
                "manifest": params.get("manifest", ""),
                "run": run,
                "phase": phase,
                "phase_label": PHASES[phase][0],
                "phase_colour": PHASES[phase][1],
                "commit": commit,
                "commit_short": commit[:12],
                "revision": revision if revision != commit else "",
                "revision_short": revision[:12] if revision and revision != commit else "",
                "branch": state.get("branch", ""),
                "pull_request": state.get("pull_request"),
                "pull_request_url": _web_url(state.get("pull_request_url")),
            }
        )
    return cards
