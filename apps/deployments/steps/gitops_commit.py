"""`gitops_commit`: write the release's manifest to the environment repository, then wait until the pull
request (if any) is merged and the GitOps operator reports the sync.

The plan carries the environment repository's settings and the rendered manifest (apps.deployments.plans),
so approvers see the exact file that will be committed. The step runs more than once: the first run commits
(and opens the pull request); later runs, woken by polling or by a webhook (apps.gitops.services), read the
signals that arrived, the provider's API and the health URL, until merged and synced, closed, or timed out.
A new attempt (a retry, or a person resuming it after its worker was lost) starts the wait again; after a
pull request closed without merging, it commits again and opens a new one.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from typing import Any

import requests

from apps.gitops import git, providers

from ._util import SCHEMA_DIALECT, http_session, now, read_body
from .base import StepContext, StepKind, StepResult, StepStatus, register

REPOSITORY: dict[str, Any] = {
    "type": "object",
    "description": "Set by the plan from the environment's repository.",
    "properties": {
        "url": {"type": "string"},
        "branch": {"type": "string"},
        "path": {"type": "string"},
        "mode": {"enum": ["push", "pull_request"]},
        "provider": {"type": "string"},
        "api_url": {"type": "string"},
        "project": {"type": "string"},
        "credential": {"type": "string"},
        "api_token": {"type": "string"},
        "ssh_known_hosts": {"type": "string"},
        "health_url": {"type": "string"},
        "sync_timeout": {"type": "integer"},
        "poll_interval": {"type": "integer"},
    },
}
FAILED_OUTCOMES = ("closed", "sync_failed", "timed_out")
MAX_UNRELATED = 50  # reported revisions known not to include the commit, kept so they are not fetched again


def short(sha: str) -> str:
    return sha[:12]


def _person(person: dict | None) -> str:
    return f"{person['name']} <{person['email']}>" if person else "ReleaseHub"


def commit_message(ctx: StepContext) -> str:
    """Names the release, the deployment and the approvers, so the repository's log is an audit trail too."""
    release, environment, deployment = ctx.release, ctx.environment, ctx.deployment
    lines = [
        f"Deploy {release['application']} {release['version']} to {environment['name']}",
        "",
        f"Release: {release['application']} {release['version']}",
        f"Deployment: #{deployment.get('id', '?')} {deployment.get('url', '')}".rstrip(),
        f"Requested-by: {_person(deployment.get('requested_by'))}",
    ]
    lines += [f"Approved-by: {_person(person)}" for person in deployment.get("approvers", [])]
    return "\n".join(lines) + "\n"


def shows_version(body: str, version: str) -> bool:
    """Whether a health answer names `version` as a whole (1.2 is not in 1.20 or 11.2)."""
    return re.search(rf"(?<![\w.]){re.escape(version)}(?![\w.])", body) is not None


@register
class GitopsCommit(StepKind):
    name = "gitops_commit"
    title = "Commit to the environment repository"
    description = (
        "Pull mode: commits the manifest rendered for the release to the environment's repository (or opens a "
        "pull request), then waits for the merge and for the GitOps operator's sync."
    )
    # Pushing and opening a pull request are not safe to repeat blindly: a worker lost while this step ran
    # pauses the deployment for a person.
    idempotent = False
    scope = "batch"
    signals = True
    describes_deployment = True
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "wait_for_sync": {
                "type": "boolean",
                "default": True,
                "description": "Wait for the operator's sync (webhook or health URL) before the step succeeds.",
            },
            "repository": REPOSITORY,
            "manifest": {"type": "string", "description": "Set by the plan: the rendered manifest."},
        },
        "additionalProperties": False,
    }

    def run(self, ctx: StepContext) -> StepResult:
        repository = ctx.params["repository"]
        state = dict(ctx.state)
        if state and state.get("attempt") != ctx.attempt:  # a new attempt: wait again, or start over
            ctx.log("A new attempt: " + ("committing again." if state.get("outcome") == "closed" else "waiting again."))
            state = {} if state.get("outcome") == "closed" else {**state, "since": now(ctx).isoformat()}
            state.pop("outcome", None)
        state["attempt"] = ctx.attempt
        if "commit" not in state:
            commit = self._commit(ctx, "deployment", ctx.params["manifest"].encode(), commit_message(ctx))
            if not commit.changed:
                return StepResult(
                    StepStatus.SUCCEEDED,
                    f"Already at this version: {repository['path']} on {repository['branch']} holds this manifest "
                    f"(at {short(commit.sha)}); nothing committed.",
                    state={"attempt": ctx.attempt, "outcome": "unchanged"},
                )
            previous = base64.b64encode(commit.previous).decode() if commit.previous is not None else None
            # `changed`: the branch (or a pull request's branch) holds this commit, so a rollback undoes it even
            # if the step fails later (runner: StepResult.state).
            state.update(commit=commit.sha, since=now(ctx).isoformat(), previous=previous, changed=True)
            ctx.checkpoint(state)
            if repository["mode"] == "pull_request":
                opened = self._open(ctx, "deployment", commit.sha, commit_message(ctx))
                state.update(branch=opened["branch"], pull_request=opened["number"], pull_request_url=opened["url"])
                ctx.checkpoint(state)
        return self._track(ctx, repository, state)

    def rollback(self, ctx: StepContext) -> StepResult:
        """Put the file back as it was before this step's commit (remove it if it did not exist): on the branch,
        or, in pull-request mode, through a new pull request that someone merges. A request never merged left
        the branch as it was."""
        repository, state = ctx.params["repository"], ctx.state
        if "commit" not in state:
            return StepResult(StepStatus.SUCCEEDED, "Nothing was committed; nothing to undo.")
        number = state.get("pull_request")
        if number and not state.get("merged"):
            return StepResult(
                StepStatus.SUCCEEDED,
                f"Pull request #{number} was not merged, so {repository['branch']} is as it was; close it at the "
                "provider.",
            )
        release, environment = ctx.release, ctx.environment
        message = (
            f"Roll back {release['application']} {release['version']} on {environment['name']}\n\n"
            f"Restores {repository['path']} as it was before {short(state['commit'])}.\n"
            f"Deployment: #{ctx.deployment.get('id', '?')} {ctx.deployment.get('url', '')}".rstrip()
            + "\n"
        )
        previous = state.get("previous")
        commit = self._commit(ctx, "rollback", base64.b64decode(previous) if previous else None, message)
        if not commit.changed:
            return StepResult(StepStatus.SUCCEEDED, f"{repository['path']} already is as before; nothing committed.")
        if repository["mode"] == "pull_request":
            opened = self._open(ctx, "rollback", commit.sha, message)
            return StepResult(
                StepStatus.SUCCEEDED,
                f"Opened pull request #{opened['number']} to restore the previous manifest: {opened['url']}. "
                "Merge it to finish the rollback.",
            )
        return StepResult(StepStatus.SUCCEEDED, f"Restored the previous {repository['path']} in {short(commit.sha)}.")

    @staticmethod
    def _remote(ctx: StepContext) -> git.Remote:
        repository = ctx.params["repository"]
        return git.Remote(
            repository["url"],
            repository.get("credential", ""),
            repository.get("ssh_known_hosts", ""),
            timeout=min(ctx.timeout, 300),
        )

    @staticmethod
    def _head(ctx: StepContext, purpose: str, sha: str) -> str:
        """The branch a pull request's commit is pushed to: new for each commit, so no push ever overwrites."""
        return f"releasehub/{purpose}-{ctx.deployment.get('id', 'x')}-{sha[:8]}"

    def _commit(self, ctx: StepContext, purpose: str, content: bytes | None, message: str) -> git.Commit:
        repository = ctx.params["repository"]
        pull_request = repository["mode"] == "pull_request"
        return git.commit_file(
            self._remote(ctx),
            branch=repository["branch"],
            path=repository["path"],
            content=content,
            message=message,
            author=self._author(ctx),
            push_branch=(lambda sha: self._head(ctx, purpose, sha)) if pull_request else None,
            log=ctx.log,
        )

    @staticmethod
    def _author(ctx: StepContext) -> tuple[str, str]:
        person = ctx.deployment.get("requested_by")
        return (person["name"], person["email"]) if person else ("ReleaseHub", git.COMMITTER[1])

    @staticmethod
    def _client(repository: dict) -> dict[str, Any]:
        """Where and how to call the provider. The credential stands in for the API token only when it is one
        (an https token), never an ssh key."""
        api_url = repository.get("api_url") or providers.DEFAULT_API_URLS[repository["provider"]]
        project = repository.get("project") or providers.project_from_url(repository["url"])
        token = repository.get("api_token") or (
            repository.get("credential", "") if git.is_http(repository["url"]) else ""
        )
        return {"api_url": api_url, "project": project, "token": token}

    def _open(self, ctx: StepContext, purpose: str, sha: str, message: str) -> dict[str, Any]:
        """Open the pull request of the commit `sha` (pushed to its own branch) into the repository's branch."""
        repository = ctx.params["repository"]
        head = self._head(ctx, purpose, sha)
        title, _, body = message.partition("\n\n")
        client = providers.CLIENTS[repository["provider"]]
        opened = client.create(**self._client(repository), head=head, base=repository["branch"], title=title, body=body)
        ctx.log(f"Opened pull request #{opened.number}: {opened.url}")
        return {"branch": head, "number": opened.number, "url": opened.url}

    def _track(self, ctx: StepContext, repository: dict, state: dict) -> StepResult:
        """Awaiting merge, then awaiting sync: what the signals, the provider and the health URL say now."""
        deadline = datetime.fromisoformat(state["since"]) + timedelta(seconds=repository.get("sync_timeout", 3600))
        number = state.get("pull_request")
        if number and not state.get("merged"):
            verdict = self._merge_verdict(ctx, repository, number, state["since"])
            if verdict and verdict.state == "closed":
                state["outcome"] = "closed"
                message = f"Pull request #{number} was closed without being merged."
                return StepResult(StepStatus.FAILED, message, state=state)
            if verdict and verdict.state == "merged":
                state.update(
                    merged=True, merged_at=now(ctx).isoformat(), revision=verdict.merge_commit or state["commit"]
                )
                ctx.log(f"Pull request #{number} merged ({short(state['revision'])}).")
            else:
                return self._wait(
                    ctx, state, deadline, f"Awaiting merge of pull request #{number}: {state.get('pull_request_url')}"
                )
        revision = state.get("revision") or state["commit"]
        if not ctx.params.get("wait_for_sync", True):
            state["outcome"] = "committed"
            return StepResult(
                StepStatus.SUCCEEDED, f"Committed {short(revision)}; not waiting for the sync.", state=state
            )
        synced = self._sync_verdict(ctx, repository, revision, state)
        if synced is not None:
            return synced
        return self._wait(ctx, state, deadline, f"Awaiting sync of {short(revision)} on {repository['branch']}.")

    def _merge_verdict(self, ctx: StepContext, repository: dict, number: int, since: str):
        for signal in reversed(ctx.signals):  # the newest first; those from before this attempt do not count
            if (
                signal.get("pull_request") == number
                and signal["kind"] in ("merged", "closed")
                and signal["at"] >= since
            ):
                state = "merged" if signal["kind"] == "merged" else "closed"
                return providers.PullRequest(number, "", state, signal.get("revision", ""))
        client = self._client(repository)
        if not client["token"]:
            return None  # nothing to poll with: the provider's webhook decides
        try:
            return providers.CLIENTS[repository["provider"]].get(**client, number=number)
        except providers.ProviderError as exc:
            ctx.log(f"Could not read pull request #{number}: {exc}")
            return None

    def _sync_verdict(self, ctx: StepContext, repository: dict, revision: str, state: dict) -> StepResult | None:
        """The newest sync report that concerns the commit: one naming it or a later commit of the branch, or one
        naming no revision that came after the commit (after the merge, for a pull request)."""
        since = state.get("merged_at") or state["since"]
        reports = [s for s in reversed(ctx.signals) if s["kind"] in ("synced", "sync_failed") and s["at"] >= since]
        unrelated = set(state.get("unrelated", []))
        named = {s["revision"] for s in reports if s.get("revision")} - unrelated
        including = set()
        if named:
            try:
                including = git.containing(
                    self._remote(ctx), branch=repository["branch"], commit=revision, revisions=named
                )
            except git.GitError as exc:  # the repository is unreachable for now: look again at the next wake
                ctx.log(f"Could not compare the reported revisions with {short(revision)}: {exc}")
                named = set()
            state["unrelated"] = sorted(unrelated | (named - including))[-MAX_UNRELATED:]
        for signal in reports:
            reported = signal.get("revision", "")
            if reported and reported not in including:
                continue  # an older revision, another branch's, or one not compared yet
            applied = short(reported or revision)
            if signal["kind"] == "sync_failed":
                state["outcome"] = "sync_failed"
                message = f"The operator reported a failed sync of {applied}: {signal.get('message')}"
                return StepResult(StepStatus.FAILED, message, state=state)
            state["outcome"] = "synced"
            return StepResult(StepStatus.SUCCEEDED, f"Synced: the operator applied {applied}.", state=state)
        url = repository.get("health_url")
        if url:
            version = ctx.release["version"]
            try:
                with http_session().get(url, timeout=10, stream=True) as response:
                    body, _ = read_body(response, 64 * 1024)
                    if response.status_code < 400 and shows_version(body, version):
                        state["outcome"] = "synced"
                        return StepResult(StepStatus.SUCCEEDED, f"Synced: {url} shows version {version}.", state=state)
                    ctx.log(f"{url} answered {response.status_code} without version {version} yet.")
            except requests.RequestException as exc:
                ctx.log(f"{url}: {type(exc).__name__}")
        return None

    def _wait(self, ctx: StepContext, state: dict, deadline: datetime, message: str) -> StepResult:
        current = now(ctx)
        if current >= deadline:
            state["outcome"] = "timed_out"
            return StepResult(
                StepStatus.FAILED, f"{message.rstrip('.')}: still not done when the sync timeout ran out.", state=state
            )
        repository = ctx.params["repository"]
        awaiting_merge = state.get("pull_request") and not state.get("merged")
        polls = repository.get("health_url") or (awaiting_merge and self._client(repository)["token"])
        interval = timedelta(seconds=repository.get("poll_interval", 30))
        resume = min(current + interval, deadline) if polls else deadline
        return StepResult(StepStatus.WAITING, message, state=state, resume_at=resume)
