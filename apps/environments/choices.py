from django.db import models


class Tier(models.TextChoices):
    """Kinds of environment, in lifecycle order (see TIER_ORDER)."""

    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    OTHER = "other", "Other"


TIER_ORDER = {tier: position for position, tier in enumerate(Tier.values)}


class Slot(models.TextChoices):
    """A target's side in blue/green deployments."""

    NONE = "none", "None"
    BLUE = "blue", "Blue"
    GREEN = "green", "Green"


# Actions teams can be granted on one environment (Meta.permissions of Environment).
ENVIRONMENT_ACTIONS = {
    "view": "See the environment, its targets and variables (secrets stay masked)",
    "deploy": "Request deployments to it",
    "approve": "Approve deployments to it",
    "book": "Book deployment slots on its calendar",
    "manage": "Edit it, its targets and variables, and grant access",
}
