from __future__ import annotations

from django.db import models

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
