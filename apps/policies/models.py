from __future__ import annotations

from django.db import models

from apps.core.history import history
from apps.core.models import TimestampedModel
from apps.environments.choices import Tier


class PolicySet(TimestampedModel):
    """Rules that apply to every deployment to the environments it is attached to: named ones, those of some
    tiers, or all of them."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    environments = models.ManyToManyField("environments.Environment", blank=True, related_name="policy_sets")
    tiers = models.JSONField(default=list, blank=True, help_text=f"Tiers it applies to: {', '.join(Tier.values)}.")
    all_environments = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    history = history(m2m_fields=[environments])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Rule(models.Model):
    """One rule of a policy set: a kind (apps.policies.rules.KINDS) with its parameters."""

    policy_set = models.ForeignKey(PolicySet, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    overridable = models.BooleanField(default=True, help_text="Someone who manages the environment may override it.")
    two_person = models.BooleanField(default=False, help_text="An override needs a second person to confirm it.")

    history = history()

    class Meta:
        ordering = ["policy_set", "position"]
        constraints = [models.UniqueConstraint(fields=["policy_set", "position"], name="rule_position_per_set")]

    def __str__(self) -> str:
        return f"{self.policy_set}: {self.kind}"


class PolicyOverride(models.Model):
    """Failed rules of one deployment (named `set/kind`) that someone who manages its environment let pass, with
    why. When one of them is a two-person rule, the override counts only once a second such person confirms it."""

    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.CASCADE, related_name="policy_overrides")
    rules = models.JSONField(help_text="The rules it overrides, as `policy-set/kind`.")
    justification = models.TextField()
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    needs_confirmation = models.BooleanField(default=False)
    confirmed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["deployment", "requested_at", "id"]

    def __str__(self) -> str:
        return f"Override of {', '.join(self.rules)} for {self.deployment_id}"

    @property
    def effective(self) -> bool:
        return not self.needs_confirmation or self.confirmed_at is not None
