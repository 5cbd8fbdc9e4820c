"""Writes for the release calendar: bookings (request, approve, decline, cancel). Each audits itself and tells
the people concerned (apps.notifications, event `booking.changed`).

Who may: requesting needs `book` on the environment. Where the environment `requires_booking`,
a booking waits for an owner-team member or someone with `manage` to approve it, unless one of
them requested it; elsewhere it is approved at once. The requester, a member of the booking's
team, or a manager may cancel it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.audit.services import audit_record
from apps.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from apps.core.permissions import can, ensure_can, holders
from apps.environments.models import Environment
from apps.notifications.services import notify

from .models import ACTIVE_BOOKING_STATUSES, Booking, BookingStatus

# A booking may start this much in the past (a slot requested "now" reaches the server a moment later).
PAST_TOLERANCE = timedelta(minutes=5)
TITLE_MAX = 200


def _is_owner(user: User | None, environment: Environment) -> bool:
    """A member of the environment's owner team, or someone with `manage` on it (the system is)."""
    if user is None:
        return True
    return user.groups.filter(team__pk=environment.owner_team_id).exists() or can(user, "manage", environment)


def _team(actor: User | None, environment: Environment, team: Team | None) -> Team:
    """The team the booking is for: the one named (the requester must be in it), else the requester's team
    that may book there, else the environment's owner team."""
    if team is not None:
        if actor is not None and not actor.is_superuser and not actor.groups.filter(team__pk=team.pk).exists():
            raise ValidationFailed(fields={"team": ["Choose a team you are a member of."]})
        return team
    if actor is not None:
        booking_groups = holders(environment, "book")
        mine = Team.objects.filter(group__user=actor, group__in=booking_groups).order_by("name").first()
        if mine is not None:
            return mine
    return environment.owner_team


def _check_slot(environment: Environment, starts_at: datetime, ends_at: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if ends_at <= starts_at:
        raise ValidationFailed("A booking ends after it starts.", fields={"ends_at": ["Must be after starts_at."]})
    minutes = (ends_at - starts_at).total_seconds() / 60
    if minutes < environment.booking_min_minutes:
        errors["ends_at"] = [f"{environment.name} takes bookings of {environment.booking_min_minutes} minutes or more."]
    if minutes > environment.booking_max_minutes:
        errors["ends_at"] = [f"{environment.name} takes bookings of {environment.booking_max_minutes} minutes or less."]
    now = timezone.now()
    if starts_at < now - PAST_TOLERANCE:
        errors["starts_at"] = ["A booking cannot start in the past."]
    if starts_at > now + timedelta(days=environment.booking_horizon_days):
        errors["starts_at"] = [
            f"{environment.name} takes bookings up to {environment.booking_horizon_days} days ahead."
        ]
    if errors:
        raise ValidationFailed(" ".join(m for messages in errors.values() for m in messages), fields=errors)


def overlapping(environment_id: int, starts_at: datetime, ends_at: datetime, exclude: int | None = None):
    """Active bookings of the environment that overlap [starts_at, ends_at) (half-open: touching is fine)."""
    qs = Booking.objects.filter(
        environment_id=environment_id,
        status__in=ACTIVE_BOOKING_STATUSES,
        starts_at__lt=ends_at,
        ends_at__gt=starts_at,
    )
    return qs.exclude(pk=exclude) if exclude else qs


def _conflict(booking: Booking) -> Conflict:
    when = f"{booking.starts_at:%Y-%m-%d %H:%M} to {booking.ends_at:%H:%M} UTC"
    return Conflict(
        f"{booking.environment.name} is booked then: booking #{booking.pk} “{booking.title}” ({when}, "
        f"{booking.get_status_display().lower()}, {booking.team.name}).",
        fields={"starts_at": [f"Overlaps booking #{booking.pk}."]},
        booking=booking.pk,
    )


def _announce(booking: Booking, what: str, recipients=()) -> None:
    notify(
        "booking.changed",
        environment=booking.environment,
        subject=f"Booking of {booking.environment.name} {what}: {booking.title}",
        body=f"{booking.starts_at:%Y-%m-%d %H:%M} to {booking.ends_at:%Y-%m-%d %H:%M} UTC, {booking.team.name}."
        + (f" {booking.reason}" if booking.reason else ""),
        url=reverse("scheduling:calendar") + f"?booking={booking.pk}",
        recipients=recipients,
        data={"booking": booking.pk, "status": booking.status, "environment": booking.environment.slug},
    )


def booking_request(
    *,
    actor: User | None,
    environment: Environment,
    starts_at: datetime,
    ends_at: datetime,
    title: str,
    notes: str = "",
    release=None,
    team: Team | None = None,
) -> Booking:
    """Book a slot. Raises NotFound/PermissionDenied (no `book`), ValidationFailed (times, length, horizon),
    Conflict naming the active booking it overlaps (409)."""
    if actor is not None:
        ensure_can(actor, "book", environment)
    title = (title or "").strip()
    if not title or len(title) > TITLE_MAX:
        raise ValidationFailed(fields={"title": [f"A title of 1 to {TITLE_MAX} characters."]})
    if (
        release is not None
        and release.application_id
        and actor is not None
        and not can(actor, "view", release.application)
    ):
        raise ValidationFailed(fields={"release": ["No such release."]})
    _check_slot(environment, starts_at, ends_at)
    team = _team(actor, environment, team)
    approved = not environment.requires_booking or _is_owner(actor, environment)
    now = timezone.now()
    booking = Booking(
        environment=environment,
        starts_at=starts_at,
        ends_at=ends_at,
        team=team,
        requested_by=actor,
        release=release,
        title=title,
        notes=notes,
        status=BookingStatus.APPROVED if approved else BookingStatus.REQUESTED,
        decided_by=actor if approved and environment.requires_booking else None,
        decided_at=now if approved else None,
    )
    try:
        with transaction.atomic():
            # SQLite runs write transactions one at a time, so this check and the insert cannot interleave;
            # on PostgreSQL the exclusion constraint has the last word (below).
            clash = overlapping(environment.pk, starts_at, ends_at).select_related("environment", "team").first()
            if clash is not None:
                raise _conflict(clash)
            booking.save()
            audit_record(
                verb="booking.requested",
                target=booking,
                actor=actor,
                summary=f"{booking}: {starts_at:%Y-%m-%d %H:%M} to {ends_at:%H:%M} UTC",
                details=_details(booking),
            )
            if approved:
                audit_record(verb="booking.approved", target=booking, actor=actor, details={"automatic": True})
            _announce(booking, "approved" if approved else "requested")
    except IntegrityError as exc:
        if connection.vendor != "postgresql" or getattr(exc.__cause__, "sqlstate", "") != "23P01":
            raise
        clash = overlapping(environment.pk, starts_at, ends_at).select_related("environment", "team").first()
        raise (_conflict(clash) if clash else Conflict("The slot was booked meanwhile.")) from exc
    return booking


def _details(booking: Booking) -> dict:
    return {
        "environment": booking.environment.slug,
        "starts_at": booking.starts_at,
        "ends_at": booking.ends_at,
        "team": booking.team.slug,
        "release": booking.release_id,
        "status": booking.status,
    }


def _locked(booking: Booking) -> Booking:
    return Booking.objects.select_for_update(of=("self",)).select_related("environment", "team").get(pk=booking.pk)


def _decide(actor: User | None, booking: Booking, status: str, reason: str) -> Booking:
    with transaction.atomic():
        booking = _locked(booking)
        if actor is not None:
            ensure_can(actor, "view", booking.environment)
            if not _is_owner(actor, booking.environment):
                raise PermissionDenied(
                    f"Only members of {booking.environment.owner_team.name} or its managers decide on bookings."
                )
        if booking.status != BookingStatus.REQUESTED:
            raise InvalidTransition(f"{booking} is {booking.get_status_display().lower()}, not waiting for a decision.")
        booking.status, booking.decided_by, booking.decided_at, booking.reason = status, actor, timezone.now(), reason
        booking.save(update_fields=["status", "decided_by", "decided_at", "reason", "updated_at"])
        audit_record(verb=f"booking.{status}", target=booking, actor=actor, details={"reason": reason})
        _announce(booking, status, recipients=[booking.requested_by])
    return booking


def booking_approve(*, actor: User | None, booking: Booking) -> Booking:
    """Approve a requested booking (owner-team members and managers). Raises PermissionDenied, InvalidTransition."""
    return _decide(actor, booking, BookingStatus.APPROVED, "")


def booking_decline(*, actor: User | None, booking: Booking, reason: str) -> Booking:
    """Decline a requested booking, with a reason."""
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": ["Say why it is declined."]})
    return _decide(actor, booking, BookingStatus.DECLINED, reason.strip())


def booking_cancel(*, actor: User | None, booking: Booking, reason: str = "") -> Booking:
    """Cancel an active booking: its requester, a member of its team, or an owner/manager of the environment."""
    with transaction.atomic():
        booking = _locked(booking)
        if actor is not None:
            ensure_can(actor, "view", booking.environment)
            allowed = (
                booking.requested_by_id == actor.pk
                or actor.groups.filter(team__pk=booking.team_id).exists()
                or _is_owner(actor, booking.environment)
            )
            if not allowed:
                raise PermissionDenied("Only its requester, its team or the environment's owners may cancel it.")
        if booking.status not in ACTIVE_BOOKING_STATUSES:
            raise InvalidTransition(f"{booking} is {booking.get_status_display().lower()} already.")
        booking.status, booking.reason = BookingStatus.CANCELLED, reason.strip()
        booking.save(update_fields=["status", "reason", "updated_at"])
        audit_record(verb="booking.cancelled", target=booking, actor=actor, details={"reason": booking.reason})
        _announce(booking, "cancelled", recipients=[booking.requested_by])
    return booking
