"""Git hosting providers: the two REST calls the pull-request flow makes (open one, read one), and what their
webhooks say, with each provider's signature check.

GitHub (and GitHub Enterprise: api_url https://HOST/api/v3), GitLab (gitlab.com or self-managed: api_url
https://HOST) and Gitea/Forgejo (api_url https://HOST). `generic` is for the GitOps operator's notifications:
Flux's `generic-hmac` provider as it is, or Argo CD Notifications with a webhook template (docs/gitops.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com", "gitea": ""}
PROVIDERS = ("github", "gitlab", "gitea")
WEBHOOK_PROVIDERS = (*PROVIDERS, "generic")
TIMEOUT = 20


class ProviderError(Exception):
    """The provider refused or failed a call; the message says what it answered."""


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    state: str  # "open", "merged" or "closed" (closed without being merged)
    merge_commit: str = ""


def project_from_url(url: str) -> str:
    """owner/name (GitLab: group/subgroup/name) from a clone URL."""
    path = re.sub(r"^[a-z+]+://[^/]+/|^[^/:]+@[^/:]+:", "", url.strip())
    return re.sub(r"\.git$", "", path.strip("/"))


def _call(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> dict[str, Any]:
    try:
        response = requests.request(
            method, url, headers={"User-Agent": "ReleaseHub-deployer", **headers}, json=body, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise ProviderError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise ProviderError(f"{method} {url} answered {response.status_code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"{method} {url} answered something that is not JSON.") from exc


class _GitHubLike:
    """GitHub and Gitea share the shape of pull requests; they differ in prefix and auth header."""

    prefix = ""
    auth = "Bearer"

    def _base(self, api_url: str, project: str) -> str:
        return f"{api_url.rstrip('/')}{self.prefix}/repos/{project}/pulls"

    def _headers(self, token: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"{self.auth} {token}"
        return headers

    def _read(self, data: dict) -> PullRequest:
        merged = bool(data.get("merged"))
        state = "merged" if merged else ("open" if data.get("state") == "open" else "closed")
        return PullRequest(
            int(data["number"]), data.get("html_url", ""), state, _revision(data.get("merge_commit_sha") or "")
        )

    def create(self, *, api_url, project, token, head, base, title, body) -> PullRequest:
        payload = {"title": title, "head": head, "base": base, "body": body}
        return self._read(_call("POST", self._base(api_url, project), self._headers(token), payload))

    def get(self, *, api_url, project, token, number) -> PullRequest:
        return self._read(_call("GET", f"{self._base(api_url, project)}/{number}", self._headers(token)))


class GitHub(_GitHubLike):
    pass


class Gitea(_GitHubLike):
    prefix = "/api/v1"
    auth = "token"


class GitLab:
    def _base(self, api_url: str, project: str) -> str:
        return f"{api_url.rstrip('/')}/api/v4/projects/{quote(project, safe='')}/merge_requests"

    def _headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token} if token else {}

    def _read(self, data: dict) -> PullRequest:
        state = {"opened": "open", "locked": "open", "merged": "merged"}.get(data.get("state", ""), "closed")
        commit = _revision(data.get("merge_commit_sha") or data.get("squash_commit_sha") or "")
        return PullRequest(int(data["iid"]), data.get("web_url", ""), state, commit)

    def create(self, *, api_url, project, token, head, base, title, body) -> PullRequest:
        payload = {"source_branch": head, "target_branch": base, "title": title, "description": body}
        return self._read(_call("POST", self._base(api_url, project), self._headers(token), payload))

    def get(self, *, api_url, project, token, number) -> PullRequest:
        return self._read(_call("GET", f"{self._base(api_url, project)}/{number}", self._headers(token)))


CLIENTS = {"github": GitHub(), "gitlab": GitLab(), "gitea": Gitea()}


# --- Webhooks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What one webhook delivery says, in ReleaseHub's terms. `kind`: merged, closed (a pull request closed
    without merging), synced, sync_failed; "" for deliveries that concern nothing here (a ping, a comment)."""

    kind: str
    project: str = ""  # the repository the provider names (owner/name), "" for generic ones
    pull_request: int | None = None
    revision: str = ""  # merged: the merge commit; synced / sync_failed: what the operator applied
    environment: str = ""  # generic: the environment slug the notification names, if any
    message: str = ""
    name: str = ""  # the provider's event name, for the audit trail

    def as_signal(self) -> dict[str, Any]:
        signal = {"kind": self.kind, "revision": self.revision, "message": self.message[:500]}
        if self.pull_request is not None:
            signal["pull_request"] = self.pull_request
        return signal


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(provider: str, headers, body: bytes, secret: str) -> bool:
    """Whether the delivery carries `secret` the way `provider` signs: GitHub X-Hub-Signature-256 (sha256=HMAC),
    Gitea X-Gitea-Signature (HMAC), GitLab X-Gitlab-Token (the secret itself); generic: X-Signature (sha256=HMAC,
    as Flux's generic-hmac sends) or X-ReleaseHub-Token (the secret itself, for senders that cannot compute an
    HMAC, such as Argo CD Notifications)."""
    if not secret:
        return False
    if provider == "gitlab":
        return _same(headers.get("X-Gitlab-Token", ""), secret)
    if provider == "generic" and "X-ReleaseHub-Token" in headers:
        return _same(headers["X-ReleaseHub-Token"], secret)
    header = {"github": "X-Hub-Signature-256", "gitea": "X-Gitea-Signature", "generic": "X-Signature"}[provider]
    expected = _hmac(secret, body)
    return _same(headers.get(header, "").strip().lower(), expected if provider == "gitea" else f"sha256={expected}")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _revision(text: str) -> str:
    """The commit SHA of a revision as operators report it: `abc123`, `main@sha1:abc123`, `main/abc123`."""
    match = re.search(r"([0-9a-f]{7,64})$", str(text or "").strip().lower())
    return match.group(1) if match else ""


def parse(provider: str, headers, body: bytes) -> Event:
    """The Event of a delivery whose signature was checked. Raises ValueError when the body is not JSON."""
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("The body is not a JSON object.")
    if provider in ("github", "gitea"):
        name = headers.get("X-GitHub-Event" if provider == "github" else "X-Gitea-Event", "")
        pull = data.get("pull_request") or {}
        project = str((data.get("repository") or {}).get("full_name", ""))
        if name != "pull_request" or data.get("action") != "closed" or not isinstance(pull, dict):
            return Event("", project, name=name)
        merged = bool(pull.get("merged"))
        return Event(
            "merged" if merged else "closed",
            project,
            pull_request=int(pull.get("number") or data.get("number") or 0),
            revision=_revision(pull.get("merge_commit_sha") or "") if merged else "",
            name=f"{name}.closed",
        )
    if provider == "gitlab":
        name = headers.get("X-Gitlab-Event", "")
        attributes = data.get("object_attributes") or {}
        project = str((data.get("project") or {}).get("path_with_namespace", ""))
        action = attributes.get("action") if isinstance(attributes, dict) else None
        if data.get("object_kind") != "merge_request" or action not in ("merge", "close"):
            return Event("", project, name=name)
        return Event(
            "merged" if action == "merge" else "closed",
            project,
            pull_request=int(attributes.get("iid") or 0),
            revision=_revision(attributes.get("merge_commit_sha") or attributes.get("squash_commit_sha") or ""),
            name=f"merge_request.{action}",
        )
    # generic: {"status": "synced"|"healthy"|"degraded"|"failed", "revision", "environment", "message"}
    # or a Flux event: {"severity": "info"|"error", "reason", "message", "metadata": {"revision"}}
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    revision = _revision(str(data.get("revision") or metadata.get("revision") or ""))
    status = str(data.get("status") or "").lower()
    if not status and "severity" in data:
        reason = str(data.get("reason", ""))
        failed = data.get("severity") == "error" or "Failed" in reason
        status = "failed" if failed else ("synced" if "Succeeded" in reason else "")
    kind = {
        "synced": "synced",
        "healthy": "synced",
        "succeeded": "synced",
        "degraded": "sync_failed",
        "failed": "sync_failed",
        "error": "sync_failed",
    }.get(status, "")
    return Event(
        kind,
        revision=revision,
        environment=str(data.get("environment") or ""),
        message=str(data.get("message") or ""),
        name=status or str(data.get("reason") or ""),
    )
