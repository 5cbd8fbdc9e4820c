from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.catalog.models import VERSION
from apps.core.history import history
from apps.core.models import TimestampedModel


class Release(TimestampedModel):
    """A bundle of artifact versions of one application, deployed and promoted as one.

    Immutable once a deployment used it (`releases.services` refuses changes then): the
    plans and approvals of those deployments describe exactly these artifacts.
    """

    application = models.ForeignKey("catalog.Application", on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=128, validators=[VERSION])
    notes = models.TextField(blank=True)
    artifacts = models.ManyToManyField("catalog.Artifact", through="ReleaseArtifact", related_name="releases")
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    lifecycle = models.ForeignKey(
        "environments.Lifecycle",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="releases",
        help_text="The stages it is promoted through (from its CD trigger or its application).",
    )

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "version"], name="release_version_per_application")
        ]
        indexes = [models.Index(fields=["application", "-created_at"], name="release_latest")]

    def __str__(self) -> str:
        return f"{self.application.slug} {self.version}"


class ReleaseArtifact(models.Model):
    """One artifact of a release, in the order given; the first one is the release's primary artifact
    (`artifact.*` in deployment templates)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="release_artifacts")
    artifact = models.ForeignKey("catalog.Artifact", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    history = history()

    class Meta:
        ordering = ["release", "position"]
        constraints = [
            models.UniqueConstraint(fields=["release", "artifact"], name="release_artifact_once"),
            models.UniqueConstraint(fields=["release", "position"], name="release_artifact_position"),
        ]

    def __str__(self) -> str:
        return f"{self.release}: {self.artifact}"


class ReleaseBlock(models.Model):
    """A release that failed or was rolled back in an environment is blocked there: CD triggers and
    automatic promotion never deploy it there again, and people need it lifted by someone with
    `manage` on the environment (or a later successful deployment of it there) first."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="blocks")
    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lift_reason = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "environment"], condition=Q(lifted_at__isnull=True), name="one_open_block"
            )
        ]

    def __str__(self) -> str:
        return f"{self.release} blocked in {self.environment}"
