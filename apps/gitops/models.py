from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.history import history
from apps.core.models import TimestampedModel
from apps.environments.validators import validate_identifier

from .git import check_path, is_ssh
from .providers import PROVIDERS


def validate_repository_url(value: str) -> None:
    """A local path, file://, ssh:// (or user@host:path), https:// or http://; no credentials inside it."""
    if value.startswith("-") or any(part.startswith("-") for part in re.split(r"[/@:]+", value)):
        raise ValidationError("No part of the URL may start with '-'.")
    if value.startswith(("https://", "http://")):
        if "@" in value.split("/")[2]:
            raise ValidationError("Put the credential in a secret variable, not in the URL.")
        return
    if value.startswith(("file://", "/")) or is_ssh(value):
        return
    raise ValidationError("Give a local path (/srv/git/env.git), file://, ssh://, user@host:path or https:// URL.")


def validate_repository_path(value: str) -> None:
    try:
        check_path(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def validate_branch(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", value) or ".." in value or value.startswith(("/", "-")):
        raise ValidationError("A branch name: letters, digits, '.', '_', '/' and '-'.")


class Mode(models.TextChoices):
    PUSH = "push", "Push to the branch"
    PULL_REQUEST = "pull_request", "Open a pull request"


class EnvironmentRepository(TimestampedModel):
    """Where a pull-mode environment's desired state lives: the file a `gitops_commit` step writes, in a branch
    of a git repository that an operator (Argo CD, Flux) applies. The environment is in pull mode while it has
    one. Credentials are secret variables of the environment, named here, so they are encrypted, masked and
    rotated like every other secret."""

    environment = models.OneToOneField("environments.Environment", on_delete=models.CASCADE, related_name="repository")
    url = models.CharField(max_length=2048, validators=[validate_repository_url])
    branch = models.CharField(max_length=200, default="main", validators=[validate_branch])
    path = models.CharField(
        max_length=500,
        validators=[validate_repository_path],
        help_text="The file written, e.g. apps/{{ release.application }}/values.yaml (Jinja2, like the manifest).",
    )
    manifest_template = models.TextField(
        help_text="Jinja2 rendering the file: {{ release.version }}, {{ artifact.uri }}, {{ var.NAME }}, ..."
    )
    credential_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_identifier],
        help_text="The secret variable holding the token (https) or private key (ssh).",
    )
    ssh_known_hosts = models.TextField(
        blank=True,
        help_text="ssh: the server's public keys, as `ssh-keyscan HOST` prints them; blank: trusted on first use.",
    )
    mode = models.CharField(max_length=16, choices=Mode, default=Mode.PUSH)
    provider = models.CharField(max_length=16, choices=[(p, p.title()) for p in PROVIDERS], blank=True)
    api_url = models.CharField(
        max_length=500, blank=True, help_text="The provider's API base URL; blank: GitHub's or GitLab's public one."
    )
    project = models.CharField(
        max_length=300, blank=True, help_text="owner/name at the provider; blank: taken from the URL."
    )
    api_token_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_identifier],
        help_text="The secret variable holding the provider API token; blank: the credential.",
    )
    webhook_secret_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_identifier],
        help_text="The secret variable holding the webhook secret the provider and the operator sign with.",
    )
    health_url = models.CharField(
        max_length=2048, blank=True, help_text="Polled while awaiting the sync: synced once it shows the version."
    )
    sync_timeout = models.PositiveIntegerField(default=3600, help_text="Seconds to wait for merge and sync.")
    poll_interval = models.PositiveIntegerField(default=30, help_text="Seconds between polls of the provider.")

    history = history()

    class Meta:
        verbose_name_plural = "environment repositories"
        indexes = [models.Index(fields=["url"], name="gitops_repository_url")]

    def __str__(self) -> str:
        return f"{self.environment}: {self.url} {self.branch}:{self.path}"

    def clean(self) -> None:
        errors = {}
        if self.mode == Mode.PULL_REQUEST and not self.provider:
            errors["provider"] = ["Pull requests need a provider (github, gitlab or gitea)."]
        if self.provider == "gitea" and not self.api_url:
            errors["api_url"] = ["Give the Gitea server's URL."]
        if self.api_url and not self.api_url.startswith(("https://", "http://")):
            errors["api_url"] = ["An http(s) URL."]
        if self.ssh_known_hosts and not is_ssh(self.url):
            errors["ssh_known_hosts"] = ["Known hosts are for ssh:// (or user@host:path) repositories only."]
        if self.health_url and not self.health_url.startswith(("https://", "http://")):
            errors["health_url"] = ["An http(s) URL."]
        if not 10 <= self.sync_timeout <= 7 * 86400:
            errors["sync_timeout"] = ["Between 10 seconds and 7 days."]
        if not 5 <= self.poll_interval <= 3600:
            errors["poll_interval"] = ["Between 5 seconds and an hour."]
        if errors:
            raise ValidationError(errors)
