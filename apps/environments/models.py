from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase

from apps.core.history import history
from apps.core.models import TimestampedModel

from .choices import ENVIRONMENT_ACTIONS, Slot, Tier
from .validators import validate_attributes, validate_identifier, validate_labels, validate_timezone

MASK = "••••••••"


class Environment(TimestampedModel):
    """A place releases are deployed to (dev, staging, production...), with its targets and variables.

    Permissions (view, deploy, approve, book, manage) are granted to teams per environment;
    targets and variables inherit them.
    """

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    tier = models.CharField(max_length=16, choices=Tier, default=Tier.DEVELOPMENT, db_index=True)
    owner_team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="environments")
    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone], help_text="Calendar rules are evaluated here."
    )
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    description = models.TextField(blank=True)
    requires_booking = models.BooleanField(default=False, help_text="Deployments need a booked slot.")
    booking_min_minutes = models.PositiveIntegerField(default=15, help_text="Shortest slot that may be booked.")
    booking_max_minutes = models.PositiveIntegerField(default=8 * 60, help_text="Longest slot that may be booked.")
    booking_horizon_days = models.PositiveIntegerField(default=90, help_text="How far ahead slots may be booked.")
    protected = models.BooleanField(default=False, help_text="Changes and deployments need extra care.")
    default_template = models.ForeignKey(
        "deployments.DeploymentTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Used by deployments that name no template (an application's default comes first).",
    )
    default_strategy = models.CharField(
        max_length=32, blank=True, help_text="Used by deployments that name no strategy (all_at_once when blank)."
    )
    default_strategy_options = models.JSONField(default=dict, blank=True)
    # Blue/green: which slot serves traffic, and the share the other slot gets during a gradual switch.
    # Written by switch_traffic steps only (apps.deployments.engine.runner).
    live_slot = models.CharField(max_length=8, choices=Slot, blank=True, editable=False)
    idle_weight = models.PositiveSmallIntegerField(default=0, editable=False)
    traffic_hook = models.JSONField(
        default=dict,
        blank=True,
        help_text='What switch_traffic runs to move traffic: {"kind": "shell" or "http", "params": {...}}, '
        "templated with {{ traffic.slot }}, {{ traffic.weight }}, {{ traffic.targets }} and {{ var.NAME }}.",
    )
    traffic_weights = models.BooleanField(
        default=False, help_text="The traffic hook can split traffic by weight: canaries shift traffic, not targets."
    )

    history = history()

    # What teams can be granted on one environment (the Access tab, accounts.services.object_access_set).
    ACCESS_ACTIONS = ENVIRONMENT_ACTIONS

    class Meta:
        ordering = ["name"]
        permissions = [(f"{a}_environment", d) for a, d in ENVIRONMENT_ACTIONS.items() if a != "view"]
        indexes = [models.Index(fields=["owner_team"], name="environment_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def default_strategy_label(self) -> str:
        from apps.deployments.models import Strategy  # deployments builds on this app

        return Strategy(self.default_strategy or Strategy.ALL_AT_ONCE).label

    def clean(self) -> None:
        # Deployments builds on this app: imported when needed.
        from apps.deployments.engine.strategies import strategy_errors
        from apps.deployments.plans import traffic_hook_errors

        errors = traffic_hook_errors(self.traffic_hook)
        if self.booking_min_minutes > self.booking_max_minutes:
            errors["booking_max_minutes"] = ["At least the shortest slot."]
        if self.default_strategy or self.default_strategy_options:
            for key, messages in strategy_errors(
                self.default_strategy or "all_at_once", self.default_strategy_options
            ).items():
                errors[f"default_{key}"] = messages
        if errors:
            raise ValidationError(errors)


class EnvironmentGroupObjectPermission(GroupObjectPermissionBase):
    """Team grants on one environment (django-guardian direct foreign key: one indexed join)."""

    content_object = models.ForeignKey(Environment, on_delete=models.CASCADE)


class Target(TimestampedModel):
    """An endpoint of an environment that deployments act on: a host, a service, a directory."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="targets")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Letters, digits, '.', '_' and '-'.")],
    )
    address = models.CharField(max_length=255, help_text="Host name, IP address or URL.")
    slot = models.CharField(max_length=8, choices=Slot, default=Slot.NONE)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    health_check_url = models.URLField(max_length=500, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="Directory for directory deployments.")
    attributes = models.JSONField(default=dict, blank=True, validators=[validate_attributes])

    history = history()

    class Meta:
        ordering = ["environment", "name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="target_name_per_environment")]

    def __str__(self) -> str:
        return self.name


class Variable(TimestampedModel):
    """A named value bound into deployment templates: per environment, optionally overridden per target.

    A secret's `value` holds Fernet ciphertext only (apps.core.crypto), so the database,
    its history and its backups never hold the secret; `display_value` masks it.
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="variables")
    target = models.ForeignKey(
        Target,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="variables",
        help_text="Override for one target.",
    )
    name = models.CharField(max_length=100, validators=[validate_identifier])
    value = models.TextField(blank=True)
    secret = models.BooleanField(default=False)
    # A secret's keyed hash (apps.core.crypto.fingerprint), for comparing environments; kept out of history.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)

    history = history(excluded_fields=["fingerprint"])

    class Meta:
        ordering = ["name", "target__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "name"],
                condition=Q(target__isnull=True),
                name="variable_name_per_environment",
                violation_error_code="unique",
                violation_error_message="This environment has a variable with this name already.",
            ),
            models.UniqueConstraint(
                fields=["target", "name"],
                condition=Q(target__isnull=False),
                name="variable_name_per_target",
                violation_error_code="unique",
                violation_error_message="This target overrides a variable with this name already.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.target.name}" if self.target_id else self.name

    @property
    def display_value(self) -> str:
        return MASK if self.secret else self.value


class Lifecycle(TimestampedModel):
    """The ordered stages a release is promoted through, e.g. dev → test → staging → production."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LifecycleStage(models.Model):
    """One step of a lifecycle: one or more environments deployed together; promotion into the next
    stage is automatic or needs a person."""

    lifecycle = models.ForeignKey(Lifecycle, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    automatic = models.BooleanField(default=False, help_text="Promote into this stage without a person.")
    environments = models.ManyToManyField(Environment, related_name="lifecycle_stages")

    history = history(m2m_fields=[environments])

    class Meta:
        ordering = ["lifecycle", "position"]
        constraints = [models.UniqueConstraint(fields=["lifecycle", "position"], name="stage_position_per_lifecycle")]

    def __str__(self) -> str:
        return f"{self.lifecycle}: {self.name}"
