"""Writes for the release calendar: bookings (request, approve, decline, cancel). Each audits itself and tells
the people concerned (apps.notifications, event `booking.changed`).

Who may: requesting needs `book` on the environment. Where the environment `requires_booking`,
a booking waits for an owner-team member or someone with `manage` to approve it, unless one of
them requested it; elsewhere it is approved at once. The requester, a member of the booking's
team, or a manager may cancel it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.audit.services import audit_record
from apps.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from apps.core.permissions import can, ensure_can, holders
from apps.environments.models import Environment
from apps.environments.validators import validate_timezone
from apps.notifications.services import notify

from . import freezes
from .models import ACTIVE_BOOKING_STATUSES, Booking, BookingStatus, FeedToken, FreezeWindow

if TYPE_CHECKING:
    from apps.deployments.models import Deployment

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


def overlapping(environment_id: int, starts_at: datetime, ends_at: datetime):
    """Active bookings of the environment that overlap [starts_at, ends_at) (half-open: touching is fine)."""
    return Booking.objects.filter(
        environment_id=environment_id,
        status__in=ACTIVE_BOOKING_STATUSES,
        starts_at__lt=ends_at,
        ends_at__gt=starts_at,
    )


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
    frozen = freezes.covering(freezes.windows_for(environment.pk), starts_at, ends_at)
    if frozen:
        window, begins, ends = frozen[0]
        raise Conflict(
            f"{environment.name} is frozen then: “{window.title}” ({begins:%Y-%m-%d %H:%M} UTC"
            f"{'' if window.is_lock else f' to {ends:%Y-%m-%d %H:%M} UTC'}): {window.reason}",
            fields={"starts_at": [f"Inside the freeze “{window.title}”."]},
            freeze=window.pk,
        )
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
            # A request waits for the owners: they are told; an approved booking only goes to subscribers.
            owners = User.objects.filter(groups__team=environment.owner_team_id, is_active=True) if not approved else []
            _announce(booking, "approved" if approved else "requested", recipients=owners)
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
        _announce(booking, status, recipients=[booking.requested_by] if booking.requested_by else [])
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
        _announce(booking, "cancelled", recipients=[booking.requested_by] if booking.requested_by else [])
    return booking


# --- Freeze windows and locks ----------------------------------------------------------------------


def _ensure_freeze_rights(actor: User | None, environments: list[Environment], all_environments: bool) -> None:
    if actor is None:
        return
    if all_environments:
        if not actor.has_perm("scheduling.add_freezewindow"):
            raise PermissionDenied("Only administrators freeze every environment at once.")
        return
    for environment in environments:
        ensure_can(actor, "manage", environment)


def _announce_freeze(window: FreezeWindow, environments: list[Environment], what: str) -> None:
    for environment in environments:
        notify(
            "freeze.changed",
            environment=environment,
            subject=f"{environment.name}: freeze “{window.title}” {what}",
            body=window.reason,
            url=reverse("scheduling:calendar"),
            data={"freeze": window.pk, "what": what, "environment": environment.slug},
        )


def freeze_create(
    *,
    actor: User | None,
    title: str,
    reason: str,
    starts_at: datetime,
    ends_at: datetime,
    environments: list[Environment] = (),
    all_environments: bool = False,
    rrule: str = "",
    exdates: list[str] = (),
    timezone_name: str = "UTC",
) -> FreezeWindow:
    """A freeze window (one-off, or recurring with an RRULE in `timezone_name`). Needs `manage` on each
    environment, or the global add_freezewindow permission for all. Raises ValidationFailed, PermissionDenied."""
    environments = list(environments)
    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors["title"] = ["Give it a title."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why deployments stop."]
    if not all_environments and not environments:
        errors["environments"] = ["Choose environments, or all."]
    if ends_at is None or ends_at <= starts_at:
        errors["ends_at"] = ["Must be after starts_at."]
    if rrule and (problem := freezes.rule_error(rrule)):
        errors["rrule"] = [problem]
    try:
        validate_timezone(timezone_name)
    except DjangoValidationError as exc:
        errors["timezone"] = exc.messages
    for value in exdates:
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            errors["exdates"] = [f"{value!r} is not an ISO date-time."]
    if errors:
        raise ValidationFailed(fields=errors)
    _ensure_freeze_rights(actor, environments, all_environments)
    with transaction.atomic():
        window = FreezeWindow.objects.create(
            title=title.strip(),
            reason=reason.strip(),
            all_environments=all_environments,
            starts_at=starts_at,
            ends_at=ends_at,
            rrule=rrule,
            exdates=list(exdates),
            timezone=timezone_name,
            created_by=actor,
        )
        window.environments.set(environments)
        audit_record(verb="freeze.created", target=window, actor=actor, details=_freeze_details(window, environments))
        _announce_freeze(window, environments or list(Environment.objects.all()), "set")
    return window


def _freeze_details(window: FreezeWindow, environments: list[Environment]) -> dict:
    return {
        "title": window.title,
        "environments": "all" if window.all_environments else [e.slug for e in environments],
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "rrule": window.rrule,
        "timezone": window.timezone,
        "reason": window.reason,
    }


def freeze_remove(*, actor: User | None, window: FreezeWindow) -> FreezeWindow:
    """Lift a freeze window or lock (kept inactive, for the record)."""
    with transaction.atomic():
        window = FreezeWindow.objects.select_for_update().get(pk=window.pk)
        environments = list(window.environments.all())
        _ensure_freeze_rights(actor, environments, window.all_environments)
        if not window.active:
            raise InvalidTransition(f"“{window.title}” was lifted already.")
        window.active = False
        if window.is_lock:
            window.ends_at = timezone.now()
        window.save(update_fields=["active", "ends_at", "updated_at"])
        audit_record(verb="freeze.removed", target=window, actor=actor, details=_freeze_details(window, environments))
        _announce_freeze(window, environments or list(Environment.objects.all()), "lifted")
    return window


def environment_lock(*, actor: User | None, environment: Environment, reason: str) -> FreezeWindow:
    """Freeze one environment until someone unlocks it (`manage`)."""
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": ["Say why it is locked."]})
    if actor is not None:
        ensure_can(actor, "manage", environment)
    with transaction.atomic():
        if _locks(environment).exists():
            raise InvalidTransition(f"{environment.name} is locked already.")
        who = actor.display_name if actor else "the system"
        window = FreezeWindow.objects.create(
            title=f"Locked by {who}", reason=reason.strip(), starts_at=timezone.now(), ends_at=None, created_by=actor
        )
        window.environments.set([environment])
        audit_record(
            verb="environment.locked",
            target=environment,
            actor=actor,
            details={"reason": window.reason, "freeze": window.pk},
        )
        _announce_freeze(window, [environment], "set")
    return window


def environment_unlock(*, actor: User | None, environment: Environment) -> FreezeWindow:
    """Lift the environment's lock."""
    if actor is not None:
        ensure_can(actor, "manage", environment)
    with transaction.atomic():
        window = _locks(environment).select_for_update().first()
        if window is None:
            raise InvalidTransition(f"{environment.name} is not locked.")
        window.active, window.ends_at = False, timezone.now()
        window.save(update_fields=["active", "ends_at", "updated_at"])
        audit_record(verb="environment.unlocked", target=environment, actor=actor, details={"freeze": window.pk})
        _announce_freeze(window, [environment], "lifted")
    return window


def lock_of(environment: Environment) -> FreezeWindow | None:
    """The environment's lock, if it is locked."""
    return _locks(environment).first()


def _locks(environment: Environment):
    """The environment's active lock (a window without an end), as a queryset."""
    return FreezeWindow.objects.filter(environments=environment, ends_at__isnull=True, active=True)


# --- What keeps a deployment from starting ------------------------------------------------------------


def start_blocker(deployment, now: datetime | None = None) -> str:
    """Why a queued deployment may not start now ("" when it may): a freeze it was not allowed past, or, where
    the environment requires booking, no approved booking covering now."""
    now = now or timezone.now()
    environment = deployment.environment
    if not deployment.freeze_override:
        frozen = freezes.frozen_at(environment.pk, now)
        if frozen is not None:
            return freezes.describe(*frozen) + ". Someone who manages the environment may override it."
    if environment.requires_booking:
        booked = Booking.objects.filter(
            environment_id=environment.pk, status=BookingStatus.APPROVED, starts_at__lte=now, ends_at__gt=now
        ).filter(Q(release__isnull=True) | Q(release_id=deployment.release_id))
        if not booked.exists():
            return f"{environment.name} requires a booked slot: it starts inside an approved booking."
    return ""


def _slot_of(deployment) -> Booking | None:
    """The approved booking its scheduled time falls in (environments that require booking)."""
    return (
        Booking.objects.filter(
            environment_id=deployment.environment_id,
            status__in=(BookingStatus.APPROVED, BookingStatus.COMPLETED),
            starts_at__lte=deployment.scheduled_for,
            ends_at__gt=deployment.scheduled_for,
        )
        .order_by("-starts_at")
        .first()
    )


def close_ended_slots(now: datetime | None = None) -> int:
    """Complete approved bookings that ended. A scheduled deployment of an environment that requires booking
    whose slot ended before it started does not start: it is cancelled and its requester told. Returns how
    many bookings and deployments it closed; safe to run twice or late."""
    from apps.deployments.models import Deployment, DeploymentStatus
    from apps.deployments.services import transition

    now = now or timezone.now()
    closed = 0
    with transaction.atomic():
        ended = Booking.objects.select_for_update(skip_locked=True).filter(
            status=BookingStatus.APPROVED, ends_at__lte=now
        )
        for booking in ended.select_related("environment"):
            booking.status = BookingStatus.COMPLETED
            booking.save(update_fields=["status", "updated_at"])
            audit_record(verb="booking.completed", target=booking, details={"ended": booking.ends_at})
            closed += 1
    waiting = (
        Deployment.objects.filter(
            status__in=(DeploymentStatus.SCHEDULED, DeploymentStatus.QUEUED),
            environment__requires_booking=True,
            scheduled_for__isnull=False,
            scheduled_for__lte=now,
        )
        .select_related("environment", "release", "created_by")
        .defer("plan")
    )
    for deployment in waiting:
        slot = _slot_of(deployment)
        if slot is None or slot.ends_at > now:
            continue
        with transaction.atomic():
            locked = Deployment.objects.select_for_update(skip_locked=True).filter(
                pk=deployment.pk, status=deployment.status
            )
            if not locked.exists():
                continue
            reason = (
                f"Its slot (booking #{slot.pk}, until {slot.ends_at:%Y-%m-%d %H:%M} UTC) ended before it could start."
            )
            transition(deployment, DeploymentStatus.CANCELLED, reason=reason)
            notify(
                "booking.changed",
                environment=deployment.environment,
                deployment=deployment,
                subject=f"Deployment #{deployment.pk} to {deployment.environment.name} did not start",
                body=reason + " Book another slot and schedule it again.",
                url=reverse("deployments:detail", args=[deployment.pk]),
                recipients=[deployment.created_by] if deployment.created_by else [],
                data={"deployment": deployment.pk, "booking": slot.pk},
            )
            closed += 1
    return closed


# --- Feed tokens -----------------------------------------------------------------------------------


def feed_token_regenerate(*, actor: User) -> str:
    """A new iCal feed token for `actor`, replacing the old one (which stops working at once). Returns the raw
    token: it is shown once."""
    raw = secrets.token_urlsafe(32)
    with transaction.atomic():
        FeedToken.objects.update_or_create(user=actor, defaults={"token_hash": _hash(raw)})
        audit_record(verb="calendar.feed_token_regenerated", target=actor, actor=actor, details={})
    return raw


def feed_user(raw: str) -> User | None:
    """The active user a feed token belongs to, or None."""
    if not raw:
        return None
    token = FeedToken.objects.select_related("user").filter(token_hash=_hash(raw)).first()
    return token.user if token is not None and token.user.is_active else None


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def booking_deploy(*, actor: User | None, booking: Booking, release=None, **options) -> Deployment:
    """A deployment of `release` (default: the booking's) scheduled for the booking's start (at once if the slot
    has begun), linked to the booking. The usual checks of deployment_create apply; an approved booking is
    what lets it start where the environment requires booking."""
    from apps.deployments.services import deployment_create  # deployments are created by their own service

    release = release or booking.release
    if release is None:
        raise ValidationFailed(fields={"release": ["Name the release to deploy in this slot."]})
    if booking.status not in ACTIVE_BOOKING_STATUSES or booking.ends_at <= timezone.now():
        raise InvalidTransition(f"{booking} is {booking.get_status_display().lower()}; book another slot.")
    with transaction.atomic():
        deployment = deployment_create(
            actor=actor,
            release=release,
            environment=booking.environment,
            scheduled_for=booking.starts_at,
            **options,
        )
        Booking.objects.filter(pk=booking.pk).update(deployment=deployment, release=release)
        audit_record(
            verb="booking.deployment_scheduled",
            target=booking,
            actor=actor,
            details={"deployment": deployment.pk, "release": release.pk, "starts_at": booking.starts_at},
        )
    return deployment
