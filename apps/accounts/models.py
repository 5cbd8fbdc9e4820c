from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.history import history
from apps.core.models import TimestampedModel


class User(AbstractUser):
    """A person who signs in. Deactivated, never deleted: history and audit rows refer to them."""

    timezone = models.CharField(max_length=64, default="UTC", help_text="Times are shown in this time zone.")

    history = history(excluded_fields=["password", "last_login"])

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Team(TimestampedModel):
    """A group of people that object permissions are granted to.

    Backed by a Django group, so django-guardian grants environment and application
    permissions to the team's group and every member holds them.
    """

    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team", editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


TOKEN_PREFIX_LENGTH = 8


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        """Tokens that authenticate now: not revoked, not expired, owner active."""
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()),
            revoked_at__isnull=True,
            user__is_active=True,
        )


class ApiToken(TimestampedModel):
    """A credential for CI systems and scripts: acts as its user, limited to its scopes.

    The token reads `rh_<prefix>_<secret>`. Only the prefix is stored in clear (to find
    the row); the secret is kept as its SHA-256 digest, so a database dump reveals no
    usable token. Revoked tokens stay, for the audit trail.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Refreshed at most once a minute without a history row: usage is not a change of the token.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.CharField(max_length=45, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()
    history = history(excluded_fields=["last_used_at", "last_used_ip"])

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} (rh_{self.prefix}_…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if self.is_expired else "active"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """A new (token, prefix, secret_hash)."""
        prefix = secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        return f"rh_{prefix}_{secret}", prefix, hash_secret(secret)


def hash_secret(secret: str) -> str:
    # Tokens carry 256 random bits: a fast hash is enough, a slow KDF would only slow every API call.
    return hashlib.sha256(secret.encode()).hexdigest()
