from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase

from apps.core.history import history
from apps.core.models import TimestampedModel
from apps.environments.validators import validate_labels

DIGEST = RegexValidator(r"^sha256:[0-9a-f]{64}$", "Use sha256:<64 lowercase hex digits>.")
VERSION = RegexValidator(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$", "Letters, digits, '.', '+', '_' and '-'.")
URI = RegexValidator(
    r"^(https?|s3|gs|oci|file)://\S+$", "Use an absolute https://, http://, s3://, gs://, oci:// or file:// URI."
)

# Actions teams can be granted on one application (Meta.permissions of Application).
APPLICATION_ACTIONS = {
    "view": "See the application and its artifacts",
    "register": "Register build artifacts (CI)",
    "manage": "Edit the application and grant access",
}


class ByteOrderCharField(models.CharField):
    """Text ordered by its bytes on PostgreSQL too (collation "C"), whatever the database's default collation.

    version_sort_key's keys rely on ASCII order; the en_US and ICU collations that PostgreSQL
    databases are usually created with put '~' before digits and skip punctuation, so 1.0.0
    would sort below 1.0.0-alpha. SQLite compares bytes already.
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class Application(TimestampedModel):
    """Something that is built and deployed: its artifacts are the builds CI registers."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner_team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="applications")
    repository_url = models.URLField(max_length=500, blank=True)
    lifecycle = models.ForeignKey(
        "environments.Lifecycle",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The stages its releases go through, unless a CD trigger names another.",
    )
    default_template = models.ForeignKey(
        "deployments.DeploymentTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Used by deployments that name no template.",
    )

    history = history()

    # What teams can be granted on one application (the Access tab, accounts.services.object_access_set).
    ACCESS_ACTIONS = APPLICATION_ACTIONS

    class Meta:
        ordering = ["name"]
        permissions = [(f"{a}_application", d) for a, d in APPLICATION_ACTIONS.items() if a != "view"]
        indexes = [models.Index(fields=["owner_team"], name="application_owner")]

    def __str__(self) -> str:
        return self.name


class ApplicationGroupObjectPermission(GroupObjectPermissionBase):
    """Team grants on one application (django-guardian direct foreign key)."""

    content_object = models.ForeignKey(Application, on_delete=models.CASCADE)


class Artifact(models.Model):
    """One build of an application, as CI registered it. Immutable: identity and provenance never change.

    (application, version) is unique; registering the same version with the same digest
    again returns this row, with another digest is a conflict.
    """

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="artifacts")
    version = models.CharField(max_length=128, validators=[VERSION])
    digest = models.CharField(max_length=71, validators=[DIGEST])
    uri = models.CharField(max_length=2048, validators=[URI], help_text="Where the build can be fetched.")
    commit = models.CharField(max_length=64, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    build_url = models.URLField(max_length=2048, blank=True)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    registered_at = models.DateTimeField(editable=False)
    registered_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", editable=False)
    registered_token = models.ForeignKey(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    # versions.version_sort_key: semantic-version precedence as a plain string ordering.
    # Up to ~900 characters for the longest valid version (a pre-release of 61 numeric identifiers).
    version_key = ByteOrderCharField(max_length=1024, editable=False)

    history = history()

    class Meta:
        ordering = ["application", "-version_key"]
        constraints = [
            models.UniqueConstraint(fields=["application", "version"], name="artifact_version_per_application")
        ]
        indexes = [
            models.Index(fields=["application", "-version_key"], name="artifact_latest"),
            models.Index(fields=["application", "branch", "-version_key"], name="artifact_branch_latest"),
            models.Index(fields=["digest"], name="artifact_digest", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["version"], name="artifact_version"),
            models.Index(fields=["commit"], name="artifact_commit", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["registered_at"], name="artifact_registered"),
        ]

    def __str__(self) -> str:
        return f"{self.application.slug}@{self.version}"


class CdTrigger(models.Model):
    """Continuous deployment: a build of a branch matching `branch_pattern` (a glob such as `main` or
    `release/*`) becomes a release that travels through `lifecycle`, deployed to its first stage at once."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="cd_triggers")
    branch_pattern = models.CharField(max_length=255, help_text="Glob: main, release/*, feature/**.")
    lifecycle = models.ForeignKey("environments.Lifecycle", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0, help_text="The first matching trigger wins.")
    active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["application", "position", "id"]
        indexes = [models.Index(fields=["application", "active", "position"], name="cd_trigger_lookup")]

    def __str__(self) -> str:
        return f"{self.application.slug}: {self.branch_pattern} → {self.lifecycle}"
