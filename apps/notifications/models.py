"""Who wants to hear about what (Subscription), and every message sent (Delivery, DeliveryAttempt).

Secrets never reach the database in clear: a webhook's signing secret and a chat
subscription's apprise URL (which carries the service's token) are Fernet ciphertext
(apps.core.crypto), so history rows and backups hold ciphertext only. Deliveries record a
masked recipient and a payload without secrets.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.core.history import history
from apps.core.models import TimestampedModel

from .events import EVENTS
from .masks import MASK, mask_url


def validate_events(value) -> None:
    """A non-empty list of distinct known event names."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.", code="invalid")
    unknown = [name for name in value if not isinstance(name, str) or name not in EVENTS]
    if unknown:
        raise ValidationError(
            "Unknown events: %(names)s. Known: %(known)s.",
            code="invalid",
            params={"names": ", ".join(map(str, unknown)), "known": ", ".join(EVENTS)},
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each event once.", code="invalid")


class Channel(models.TextChoices):
    EMAIL = "email", "Email"  # to the owner's address, or to each member of the team
    WEBHOOK = "webhook", "Webhook"  # a JSON POST signed with HMAC-SHA256 to a URL
    CHAT = "chat", "Chat"  # any service apprise speaks: Slack, Teams, Matrix, Discord, ...


class Subscription(TimestampedModel):
    """A person's or a team's wish to hear about some events, on one environment or all, through one channel.

    Exactly one of `owner` and `team` is set (a check constraint). A person manages their own
    subscriptions; staff manage team ones. A paused (`active=False`) email subscription of a
    person is also an opt-out: notify() then sends them no email for those events on that
    environment, not even when they are named as a recipient (an eligible approver).
    """

    owner = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="notification_subscriptions"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="notification_subscriptions"
    )
    events = models.JSONField(default=list, validators=[validate_events], help_text="Event names (events.EVENTS).")
    environment = models.ForeignKey(
        "environments.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: every environment the recipient may view.",
    )
    channel = models.CharField(max_length=8, choices=Channel)
    url = models.URLField(max_length=500, blank=True, help_text="Webhooks: where to POST.")
    # Fernet ciphertext (apps.core.crypto); never shown, decrypted by the worker that sends.
    secret_encrypted = models.TextField(blank=True, editable=False)
    apprise_url_encrypted = models.TextField(blank=True, editable=False)
    active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False, team__isnull=True) | Q(owner__isnull=True, team__isnull=False),
                name="subscription_owner_xor_team",
                violation_error_message="A subscription belongs to a person or to a team.",
            )
        ]

    def __str__(self) -> str:
        whose = self.owner.username if self.owner_id else f"team {self.team.slug}"
        return f"{self.get_channel_display()} subscription #{self.pk} of {whose}"

    @property
    def event_labels(self) -> list[tuple[str, str]]:
        """(name, what it means) of each event, for pages."""
        return [(name, EVENTS.get(name, name)) for name in self.events if isinstance(name, str)]

    @property
    def target_label(self) -> str:
        """Where it sends, safe to show: email says whose address; URLs are masked (apprise URLs carry tokens)."""
        if self.channel == Channel.EMAIL:
            return "team members' email addresses" if self.team_id else "your email address"
        if self.channel == Channel.WEBHOOK:
            return mask_url(self.url)
        return chat_label(self.apprise_url_encrypted)


def chat_label(ciphertext: str) -> str:
    """`slack://••••`: the scheme of an apprise URL (decrypted here only to read it), nothing else."""
    from apps.core.crypto import InvalidToken, decrypt

    try:
        scheme = decrypt(ciphertext).partition("://")[0] if ciphertext else ""
    except InvalidToken:
        scheme = ""
    return f"{scheme}://{MASK}" if scheme.isalnum() else MASK


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waits for its first attempt
    FAILED = "failed", "Failed, will retry"  # the last attempt failed; the next one is scheduled
    SENT = "sent", "Sent"  # accepted: a 2xx answer, the mail server, the chat service
    GAVE_UP = "gave_up", "Gave up"  # every attempt failed, or its subscription went away first


# Statuses a worker may still attempt.
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class Delivery(models.Model):
    """One message to one recipient for one event: an email to an address, a POST to a webhook, a chat message.

    Created by notify() in its caller's transaction, so it exists exactly when the event
    happened; sent by the `notifications.deliver` task, retried with exponential backoff.
    `recipient` is the address, or a masked URL; `payload` holds what was sent, never a secret.
    `next_attempt_at` and `claimed_until` are the worker's bookkeeping (written with queryset
    updates, not in history): when the next attempt is due, and until when a worker holds it.
    """

    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person it is for: a named recipient, a team member, a subscription's owner.",
    )
    event = models.CharField(max_length=40)
    channel = models.CharField(max_length=8, choices=Channel)
    recipient = models.CharField(max_length=255, help_text="Email address, or the masked URL.")
    status = models.CharField(max_length=8, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, help_text="Secrets masked.")
    payload = models.JSONField(default=dict, help_text="subject, body, url, data, environment, deployment.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)

    history = history(excluded_fields=["next_attempt_at", "claimed_until"])

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["user", "-created_at"], name="delivery_user_latest"),
            models.Index(fields=["subscription", "-created_at"], name="delivery_subscription_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.recipient} ({self.status})"

    @property
    def subject(self) -> str:
        return self.payload.get("subject", "")


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, the HTTP status (webhooks) and the outcome.

    Written once by the worker and never changed (a log, like deployments' StepRun), so it
    keeps no history table of its own; the delivery's history records each outcome.
    """

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status (webhooks).")
    error = models.TextField(blank=True, help_text="Secrets masked.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_number")]

    def __str__(self) -> str:
        return f"Attempt {self.number} of delivery #{self.delivery_id}: {'ok' if self.ok else 'failed'}"
