"""The release calendar: bookings of deployment slots per environment.

At most one active (requested or approved) booking of an environment covers any instant: on
PostgreSQL an exclusion constraint (btree_gist, `tstzrange(starts_at, ends_at) &&`) enforces it
in the database (migration 0001); on SQLite the service checks inside its write transaction,
which SQLite serialises. Slots are half-open, so a booking may start when the previous one ends.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from apps.core.history import history
from apps.core.models import TimestampedModel


class BookingStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"


# Bookings that hold their slot.
ACTIVE_BOOKING_STATUSES = (BookingStatus.REQUESTED, BookingStatus.APPROVED)


class Booking(TimestampedModel):
    """A slot of an environment's time, booked by a team for a deployment."""

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="bookings")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="bookings")
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # empty: booked by the system
    release = models.ForeignKey(
        "releases.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=BookingStatus, default=BookingStatus.REQUESTED)
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was declined or cancelled.")

    history = history()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="booking_ends_after_it_starts",
                violation_error_message="A booking ends after it starts.",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "starts_at"], name="booking_env_start"),
            models.Index(fields=["status", "starts_at"], name="booking_status_start"),
            models.Index(fields=["team", "starts_at"], name="booking_team_start"),
            models.Index(fields=["starts_at", "ends_at"], name="booking_range"),
        ]

    def __str__(self) -> str:
        return f"Booking #{self.pk} of {self.environment} ({self.title})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_BOOKING_STATUSES


class FreezeWindow(TimestampedModel):
    """A time when deployments may not start and slots may not be booked: for some environments or all.

    One-off (starts_at..ends_at), recurring (`rrule`, an RFC 5545 rule such as
    `FREQ=WEEKLY;BYDAY=FR`, repeating the first occurrence starts_at..ends_at in the window's
    `timezone`, so 18:00 stays 18:00 across DST changes; `exdates` are skipped occurrence starts,
    local ISO times), or a lock (no ends_at): one environment frozen until someone unlocks it.
    """

    title = models.CharField(max_length=200)
    reason = models.TextField()
    all_environments = models.BooleanField(default=False)
    environments = models.ManyToManyField("environments.Environment", blank=True, related_name="freezes")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: a lock, until unlocked.")
    rrule = models.CharField(max_length=500, blank=True)
    exdates = models.JSONField(default=list, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(default=True, help_text="False once removed or unlocked (kept for the record).")

    history = history()  # its environments are in its audit events

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["active", "starts_at"], name="freeze_active_start")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_lock(self) -> bool:
        return self.ends_at is None


class FeedToken(models.Model):
    """A person's token for the calendar's iCal feeds (calendar apps cannot send API tokens). Only its
    SHA-256 is stored; regenerating it replaces the old one at once."""

    user = models.OneToOneField("accounts.User", on_delete=models.CASCADE, related_name="feed_token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Feed token of {self.user}"
