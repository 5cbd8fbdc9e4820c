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
        ]

    def __str__(self) -> str:
        return f"{self.artifact} on {self.target}"
