"""Writes for pull mode: an environment's repository, and the webhooks that report merges and syncs.

A webhook delivery is checked against the webhook secret of every repository it could concern (the provider's
signature scheme, apps.gitops.providers); one that matches none is refused (401) and audited. An accepted one
becomes a signal on the waiting gitops_commit steps it concerns, which are woken at once: the step decides what
the signal means for it (apps.deployments.steps.gitops_commit), so webhooks and polling end the same way.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core import crypto
from apps.core.changes import apply_changes, validated_save
from apps.core.errors import Conflict, NotAuthenticated, ValidationFailed
from apps.core.permissions import ensure_can
from apps.deployments.models import ACTIVE_STATUSES, Deployment, StepRun
from apps.deployments.models import DeploymentStatus as S
from apps.deployments.models import StepRunStatus as R
from apps.deployments.plans import template_syntax_errors
from apps.deployments.tasks import enqueue
from apps.environments.models import Environment, Variable

from . import providers
from .models import EnvironmentRepository
from .selectors import secret_names

REPOSITORY_FIELDS = {
    "url",
    "branch",
    "path",
    "manifest_template",
    "credential_variable",
    "ssh_known_hosts",
    "mode",
    "provider",
    "api_url",
    "project",
    "api_token_variable",
    "webhook_secret_variable",
    "health_url",
    "sync_timeout",
    "poll_interval",
}
MAX_SIGNALS = 50  # per step run: the newest are kept


def _check(repository: EnvironmentRepository) -> None:
    """What the model cannot check alone: the templates' syntax, that the named variables are secrets of the
    environment, and that a credential is not sent over plain http to another machine."""
    errors = {}
    for field in ("manifest_template", "path"):
        if problems := template_syntax_errors(getattr(repository, field)):
            errors[field] = problems
    secrets = set(secret_names(repository.environment))
    for field in ("credential_variable", "api_token_variable", "webhook_secret_variable"):
        name = getattr(repository, field)
        if name and name not in secrets:
            errors[field] = [f"{repository.environment.name} has no secret variable {name}."]
    host = urlsplit(repository.url).hostname if repository.url.startswith("http://") else None
    if repository.credential_variable and host and host not in ("127.0.0.1", "localhost", "::1"):
        errors["credential_variable"] = ["A credential travels over https only (plain http: to this machine only)."]
    if errors:
        raise ValidationFailed("The repository settings are not valid.", fields=errors)


def repository_set(*, actor: User | None, environment: Environment, **fields: Any) -> EnvironmentRepository:
    """Put the environment in pull mode with this repository, or change its repository. Needs `manage`.
    Raises PermissionDenied, ValidationFailed."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    unknown = set(fields) - REPOSITORY_FIELDS
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    with transaction.atomic():
        repository = EnvironmentRepository.objects.select_for_update().filter(environment=environment).first()
        if repository is None:
            repository = EnvironmentRepository(environment=environment, **fields)
            _check(repository)
            validated_save(repository)
            details = {"url": repository.url, "branch": repository.branch, "path": repository.path}
            audit_record(verb="gitops.repository_created", target=environment, actor=actor, details=details)
            return repository
        diff = apply_changes(repository, fields)
        if diff:
            _check(repository)
            validated_save(repository)
            audit_record(verb="gitops.repository_updated", target=environment, actor=actor, details={"changes": diff})
    return repository


def repository_delete(*, actor: User | None, environment: Environment) -> None:
    """Take the environment out of pull mode. Needs `manage`; refused (Conflict) while a deployment is active."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    with transaction.atomic():
        repository = EnvironmentRepository.objects.select_for_update().filter(environment=environment).first()
        if repository is None:
            return
        if Deployment.objects.filter(environment=environment, status__in=ACTIVE_STATUSES).exists():
            raise Conflict("A deployment to this environment is in progress; remove the repository after it.")
        audit_record(verb="gitops.repository_deleted", target=environment, actor=actor, details={"url": repository.url})
        repository.delete()


# --- Webhooks ------------------------------------------------------------------------------------------


def _signed_by(provider: str, headers, body: bytes) -> list[EnvironmentRepository]:
    """The repositories whose webhook secret signed this delivery."""
    candidates = EnvironmentRepository.objects.exclude(webhook_secret_variable="").select_related("environment")
    if provider != "generic":
        candidates = candidates.filter(provider=provider)
    candidates = list(candidates)
    wanted = Q(pk__in=[])
    for repository in candidates:
        wanted |= Q(environment_id=repository.environment_id, name=repository.webhook_secret_variable)
    stored = {
        (v.environment_id, v.name): v.value
        for v in Variable.objects.filter(wanted, secret=True, target__isnull=True).only(
            "environment_id", "name", "value"
        )
    }
    matched = []
    for repository in candidates:
        ciphertext = stored.get((repository.environment_id, repository.webhook_secret_variable))
        try:
            secret = crypto.decrypt(ciphertext) if ciphertext else ""
        except InvalidToken:
            continue
        if providers.signed(provider, headers, body, secret):
            matched.append(repository)
    return matched


def webhook_receive(*, provider: str, headers, body: bytes) -> dict[str, Any]:
    """Deliver a provider's or an operator's webhook to the waiting gitops_commit steps it concerns.

    Raises NotAuthenticated (401; audited as gitops.webhook_rejected) when no repository's webhook secret signed
    it, ValidationFailed when the body is not the provider's JSON. Returns the event and the deployments woken.
    """
    if provider not in providers.WEBHOOK_PROVIDERS:
        raise ValidationFailed(f"Unknown provider {provider!r}; known: {', '.join(providers.WEBHOOK_PROVIDERS)}.")
    repositories = _signed_by(provider, headers, body)
    if not repositories:
        audit_record(
            verb="gitops.webhook_rejected",
            object_type="gitops.webhook",
            object_id=provider,
            summary=f"A {provider} webhook with a signature no repository's secret makes",
            details={"provider": provider, "bytes": len(body)},
        )
        raise NotAuthenticated("The webhook's signature does not match the webhook secret of any repository.")
    try:
        event = providers.parse(provider, headers, body)
    except (ValueError, TypeError, AttributeError) as exc:  # signed, but not shaped as the provider's events
        raise ValidationFailed(f"The webhook's body is not a {provider} event: {type(exc).__name__}: {exc}") from exc
    if event.project:
        repositories = [
            r for r in repositories if (r.project or providers.project_from_url(r.url)).lower() == event.project.lower()
        ]
    if event.environment:
        repositories = [r for r in repositories if r.environment.slug == event.environment]
    answer = {"provider": provider, "event": event.name, "kind": event.kind, "deployments": []}
    if not event.kind or not repositories:
        return answer
    now = timezone.now()
    runs = StepRun.objects.filter(
        kind="gitops_commit",
        action="deploy",
        status__in=(R.WAITING, R.RUNNING),
        deployment__status=S.RUNNING,
        deployment__environment_id__in=[r.environment_id for r in repositories],
    )
    if event.pull_request is not None:
        # A step still opening its pull request has not recorded the number yet: it gets the news too.
        runs = runs.filter(
            Q(state__pull_request=event.pull_request) | Q(status=R.RUNNING, state__pull_request__isnull=True)
        )
    signal = {**event.as_signal(), "id": uuid.uuid4().hex, "provider": provider, "at": now.isoformat()}
    with transaction.atomic():
        # The deployments first, then their step runs: the order the engine locks them in.
        concerned = runs.values_list("deployment_id", flat=True)
        list(Deployment.objects.select_for_update().filter(pk__in=concerned).order_by("pk").only("pk"))
        for run in runs.select_for_update().order_by("pk"):
            StepRun.objects.filter(pk=run.pk).update(signals=[*run.signals, signal][-MAX_SIGNALS:], resume_at=now)
            idle = Deployment.objects.filter(pk=run.deployment_id, status=S.RUNNING, lease_owner="")
            if idle.update(next_run_at=now):  # else a worker runs the step now, and sees the signal when it is done
                transaction.on_commit(lambda pk=run.deployment_id: enqueue(pk))
            answer["deployments"].append(run.deployment_id)
        if not answer["deployments"]:  # operators report every reconciliation: only news goes to the trail
            return answer
        audit_record(
            verb="gitops.webhook_received",
            object_type="gitops.webhook",
            object_id=provider,
            summary=f"{provider} {event.name}: {event.kind}",
            details={
                **{key: value for key, value in signal.items() if key not in ("at", "provider")},
                "provider": provider,
                "environments": sorted(r.environment.slug for r in repositories),
                "deployments": answer["deployments"],
            },
        )
    return answer
