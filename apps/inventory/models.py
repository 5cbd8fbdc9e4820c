from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.history import history


class Installation(models.Model):
    """An artifact of an application installed on a target by a deployment, from `since` until `until`.

    Each install or rollback adds a row and closes the one it replaces, so the rows are the
    target's timeline; the open row (`current`) answers "what runs there now" with one
    indexed lookup (a unique partial index per target and application).
    """

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="installations")
    target = models.ForeignKey("environments.Target", on_delete=models.CASCADE, related_name="installations")
    application = models.ForeignKey("catalog.Application", on_delete=models.PROTECT, related_name="installations")
    artifact = models.ForeignKey("catalog.Artifact", on_delete=models.PROTECT, related_name="installations")
    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.PROTECT, related_name="installations")
    replaced = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)
    current = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["target", "-since"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "application"], condition=Q(current=True), name="one_current_installation"
            )
        ]
        indexes = [
            models.Index(fields=["environment", "application"], condition=Q(current=True), name="installation_current"),
            models.Index(fields=["artifact"], condition=Q(current=True), name="installation_artifact_now"),
            models.Index(fields=["target", "-since"], name="installation_timeline"),
            models.Index(fields=["environment", "since"], name="installation_env_since"),
        ]

    def __str__(self) -> str:
        return f"{self.artifact} on {self.target}"


class Source(models.TextChoices):
    REPORT = "report", "Reported by the target"
    HEALTH_CHECK = "health_check", "Read from its health check URL"


class Observation(models.Model):
    """What a target says it runs of one application, and whether that differs from the installation record.

    One row per target and application, updated by each report or health check read; `expected` is the
    artifact the record named when it was last compared. A drifted row means someone or something changed
    the target outside ReleaseHub (or a deployment's record is wrong): it is flagged until the two agree.
    """

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey("environments.Target", on_delete=models.CASCADE, related_name="observations")
    application = models.ForeignKey("catalog.Application", on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=71, blank=True)
    source = models.CharField(max_length=16, choices=Source)
    observed_at = models.DateTimeField()
    reported_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expected = models.ForeignKey("catalog.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    drifted = models.BooleanField(default=False)
    drifted_since = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["target", "application"]
        constraints = [
            models.UniqueConstraint(fields=["target", "application"], name="one_observation_per_target_application")
        ]
        indexes = [
            models.Index(fields=["environment", "application"], condition=Q(drifted=True), name="observation_drifted"),
        ]

    def __str__(self) -> str:
        return f"{self.application} {self.version or self.digest} on {self.target}"

    @property
    def observed(self) -> str:
        """The version the target runs as people read it (the digest's start when it sent only that)."""
        return self.version or self.digest[:19]
