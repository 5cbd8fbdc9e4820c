"""Subscriptions (each write audited), notify() for the other apps, and the worker's delivery attempts.

notify() never sends: in its caller's transaction it decides who gets the event and records
one Delivery per message, and on commit it hands their ids to the `notifications.deliver`
task. A rolled-back action therefore notifies nobody, and the database says what is still
to send even if a message is lost (resend_lost, from beat).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.audit.services import audit_record
from apps.core.changes import validated_save
from apps.core.crypto import InvalidToken, encrypt, rotate
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import can
from apps.environments.models import Environment

from . import channels
from .channels import absolute_url
from .events import EVENTS
from .links import action_link
from .masks import MASK, mask_url
from .models import OPEN_STATUSES, Channel, Delivery, DeliveryAttempt, DeliveryStatus, Subscription

logger = logging.getLogger(__name__)

__all__ = [
    "absolute_url",
    "action_link",
    "delivery_attempt",
    "notify",
    "resend_lost",
    "subscription_create",
    "subscription_delete",
    "subscription_secrets_rotate",
    "subscription_update",
]

MAX_ATTEMPTS = 5
MAX_SUBSCRIPTIONS = 50  # per person or team
SECRET_MIN_LENGTH, SECRET_MAX_LENGTH = 16, 256
APPRISE_URL_MAX_LENGTH = 2000
SUBJECT_MAX, BODY_MAX = 200, 10_000
# How long a worker holds a delivery while it sends (webhooks time out after 10 s; SMTP may take longer).
CLAIM = timedelta(minutes=5)
# A due delivery still unsent this long after its time lost its message: resend_lost sends it again.
LOST_AFTER = timedelta(minutes=2)
CHANGEABLE = {"events", "environment", "url", "secret", "apprise_url", "active"}


# --- Subscriptions -------------------------------------------------------------------------------------


def _invisible() -> NotFound:
    return NotFound("No such subscription.")


def _ensure_manage(actor: User | None, subscription: Subscription) -> None:
    """A person manages their own subscriptions, staff the teams'; anyone else does not see it (404)."""
    if actor is None:
        return
    if subscription.owner_id is not None and subscription.owner_id != actor.pk:
        raise _invisible()
    if subscription.team_id is not None and not actor.is_staff:
        raise _invisible()


def _check_environment(who: User | None, environment: Environment | None) -> None:
    if environment is not None and who is not None and not can(who, "view", environment):
        raise ValidationFailed(fields={"environment": ["Unknown environment."]})


def _apprise_accepts(url: str) -> bool:
    import apprise  # loads its plugins: only when a chat subscription is written

    try:
        return bool(apprise.Apprise().add(url))
    except Exception:  # a malformed URL may trip a plugin's parser: it is simply not accepted
        return False


def _check_target(subscription: Subscription, *, secret: str | None, apprise_url: str | None) -> None:
    """What each channel needs, and nothing it does not use. `secret` / `apprise_url` are the new plaintexts
    (None: unchanged)."""
    errors: dict[str, list[str]] = {}
    channel = subscription.channel
    if channel != Channel.WEBHOOK:
        if subscription.url:
            errors["url"] = ["Only webhooks have a URL (chat subscriptions take an apprise_url)."]
        if secret:
            errors["secret"] = ["Only webhooks have a secret."]
    if channel != Channel.CHAT and apprise_url:
        errors["apprise_url"] = ["Only chat subscriptions have an apprise URL."]
    if channel == Channel.WEBHOOK:
        if not subscription.url:
            errors["url"] = ["A webhook needs the URL to POST to."]
        elif not subscription.url.lower().startswith(("http://", "https://")):
            errors["url"] = ["An http:// or https:// URL."]
        if secret is not None and not SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH:
            errors["secret"] = [
                f"The signing secret: from {SECRET_MIN_LENGTH} to {SECRET_MAX_LENGTH} characters "
                "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
            ]
    if channel == Channel.CHAT and apprise_url is not None:
        if not apprise_url:
            errors["apprise_url"] = ["A chat subscription needs an apprise URL."]
        elif len(apprise_url) > APPRISE_URL_MAX_LENGTH:
            errors["apprise_url"] = [f"At most {APPRISE_URL_MAX_LENGTH} characters."]
        elif not _apprise_accepts(apprise_url):
            errors["apprise_url"] = [
                "apprise does not recognise this URL (examples: slack://TokenA/TokenB/TokenC/#channel, "
                "discord://webhook_id/webhook_token, mailto://..., json://host/path)."
            ]
    if errors:
        raise ValidationFailed(fields=errors)


def _audit_details(subscription: Subscription) -> dict[str, Any]:
    return {
        "owner": subscription.owner.username if subscription.owner_id else None,
        "team": subscription.team.slug if subscription.team_id else None,
        "events": subscription.events,
        "environment": subscription.environment.slug if subscription.environment_id else None,
        "channel": subscription.channel,
        "target": subscription.target_label,
        "active": subscription.active,
    }


def subscription_create(
    *,
    actor: User | None,
    events: list[str],
    channel: str,
    environment: Environment | None = None,
    team: Team | None = None,
    owner: User | None = None,
    url: str = "",
    secret: str = "",
    apprise_url: str = "",
    active: bool = True,
) -> Subscription:
    """Subscribe `owner` (by default the actor) or `team` to `events` on `environment` (None: all) through
    `channel`. The webhook secret and the apprise URL are encrypted before they are stored.

    Team subscriptions, and subscriptions for someone else, are for staff (or the system,
    `actor=None`). Raises PermissionDenied, ValidationFailed (unknown events or environment, what
    the channel needs, too many subscriptions).
    """
    if team is not None and owner is not None:
        raise ValidationFailed("A subscription belongs to a person or to a team, not both.")
    if team is None and owner is None:
        owner = actor
    if owner is None and team is None:
        raise ValidationFailed(fields={"owner": ["Whose subscription is it?"]})
    if actor is not None and not actor.is_staff and (team is not None or owner.pk != actor.pk):
        raise PermissionDenied(
            "Only staff manage team subscriptions." if team is not None else "You manage your own subscriptions."
        )
    if channel not in Channel.values:
        raise ValidationFailed(fields={"channel": [f"One of {', '.join(Channel.values)}."]})
    _check_environment(owner if owner is not None else actor, environment)
    subscription = Subscription(
        owner=owner,
        team=team,
        events=list(events) if isinstance(events, list | tuple) else events,
        environment=environment,
        channel=channel,
        url=url or "",
        active=active,
    )
    if channel == Channel.EMAIL and owner is not None and not owner.email:
        raise ValidationFailed(fields={"channel": ["Your account has no email address; add one first."]})
    _check_target(
        subscription,
        secret=secret if (secret or channel == Channel.WEBHOOK) else None,
        apprise_url=apprise_url if (apprise_url or channel == Channel.CHAT) else None,
    )
    if channel == Channel.WEBHOOK:
        subscription.secret_encrypted = encrypt(secret)
    if channel == Channel.CHAT:
        subscription.apprise_url_encrypted = encrypt(apprise_url)
    with transaction.atomic():
        mine = Subscription.objects.filter(owner=owner) if owner is not None else Subscription.objects.filter(team=team)
        if mine.count() >= MAX_SUBSCRIPTIONS:
            raise ValidationFailed(f"At most {MAX_SUBSCRIPTIONS} subscriptions each; remove some first.")
        validated_save(subscription)
        audit_record(
            verb="subscription.created", target=subscription, actor=actor, details=_audit_details(subscription)
        )
    return subscription


def subscription_update(*, actor: User | None, subscription: Subscription, **changes: Any) -> Subscription:
    """Change a subscription's events, environment, URL, secret, apprise URL or active flag (not its channel
    or whose it is). Raises NotFound (not yours), ValidationFailed."""
    _ensure_manage(actor, subscription)
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    secret = changes.pop("secret", None)
    apprise_url = changes.pop("apprise_url", None)
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("owner", "team", "environment")
            .get(pk=subscription.pk)
        )
        diff: dict[str, Any] = {}
        for field, new in changes.items():
            old = getattr(subscription, field)
            if old != new:
                setattr(subscription, field, new)
                shown = (lambda v: v.slug if v is not None else None) if field == "environment" else (lambda v: v)
                diff[field] = [shown(old), shown(new)]
        if "environment" in diff:
            _check_environment(subscription.owner if subscription.owner_id else actor, subscription.environment)
        _check_target(subscription, secret=secret, apprise_url=apprise_url or None)
        if secret is not None and subscription.channel == Channel.WEBHOOK:
            subscription.secret_encrypted = encrypt(secret)
            diff["secret"] = MASK  # changed; never its value
        if apprise_url and subscription.channel == Channel.CHAT:
            subscription.apprise_url_encrypted = encrypt(apprise_url)
            diff["apprise_url"] = MASK
        if "url" in diff:
            diff["url"] = [mask_url(value) if value else "" for value in diff["url"]]
        if diff:
            validated_save(subscription)
            audit_record(verb="subscription.updated", target=subscription, actor=actor, details={"changes": diff})
    return subscription


def subscription_delete(*, actor: User | None, subscription: Subscription) -> None:
    """Delete a subscription; its deliveries stay, as the record of what was sent. Raises NotFound."""
    _ensure_manage(actor, subscription)
    with transaction.atomic():
        audit_record(
            verb="subscription.deleted", target=subscription, actor=actor, details=_audit_details(subscription)
        )
        subscription.delete()


def subscription_secrets_rotate(*, actor: User | None = None) -> int:
    """Re-encrypt every webhook secret and apprise URL with the first key of RELEASEHUB_ENCRYPTION_KEY; returns
    how many values. For the key rotation (`manage.py rotate_encryption_key`), in its transaction.

    Raises ValidationFailed, changing nothing, when a value opens with none of the configured keys.
    """
    count = 0
    with transaction.atomic():
        for subscription in Subscription.objects.select_for_update().order_by("pk"):
            changed = []
            for field in ("secret_encrypted", "apprise_url_encrypted"):
                ciphertext = getattr(subscription, field)
                if not ciphertext:
                    continue
                try:
                    setattr(subscription, field, rotate(ciphertext))
                except InvalidToken as exc:
                    raise ValidationFailed(
                        f"The secret of notification subscription {subscription.pk} opens with none of the "
                        "configured keys; nothing was changed."
                    ) from exc
                changed.append(field)
            if changed:
                subscription.save(update_fields=[*changed, "updated_at"])
                count += len(changed)
        audit_record(
            verb="secrets.rotated", object_type="notifications.subscription", actor=actor, details={"count": count}
        )
    return count


# --- notify() ------------------------------------------------------------------------------------------


def _plain(data: dict | None) -> dict:
    """`data` as plain JSON (dates, decimals, UUIDs as strings); ValueError if it is not a JSON object."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("notify(data=...) takes a dict")
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _matching(event: str, environment: Environment) -> list[Subscription]:
    """Subscriptions (active or paused) to `event` on `environment` or on every environment, owners' first."""
    candidates = (
        Subscription.objects.filter(Q(environment=environment) | Q(environment__isnull=True))
        .select_related("owner", "team", "environment")
        .order_by("id")
    )
    # Filtered here rather than with a JSON `contains` lookup, which SQLite lacks; a handful of rows.
    subscriptions = [s for s in candidates if isinstance(s.events, list) and event in s.events]
    return sorted(subscriptions, key=lambda s: (s.team_id is not None, s.pk))


def _plan(event: str, environment: Environment, recipients: Iterable[User]) -> list[dict[str, Any]]:
    """Who gets the event, as Delivery fields: subscriptions of people (who may view the environment), then
    team subscriptions (email: each member who may view it), then the named recipients. One email per
    address; a person's paused email subscription to the event opts them out of every email about it."""
    subscriptions = _matching(event, environment)
    opted_out = {s.owner_id for s in subscriptions if s.owner_id and not s.active and s.channel == Channel.EMAIL}
    may_view: dict[int, bool] = {}

    def viewer(user: User) -> bool:
        if user.pk not in may_view:
            may_view[user.pk] = user.is_active and can(user, "view", environment)
        return may_view[user.pk]

    planned: list[dict[str, Any]] = []
    emailed: set[str] = set()

    def email(user: User, subscription: Subscription | None) -> None:
        address = (user.email or "").strip()
        if not address or address.lower() in emailed or user.pk in opted_out or not viewer(user):
            return
        emailed.add(address.lower())
        planned.append(
            {"subscription": subscription, "user": user, "channel": Channel.EMAIL, "recipient": address[:255]}
        )

    for subscription in subscriptions:
        if not subscription.active:
            continue
        if subscription.owner_id is not None:
            if subscription.channel == Channel.EMAIL:
                email(subscription.owner, subscription)
            elif viewer(subscription.owner):
                planned.append(
                    {
                        "subscription": subscription,
                        "user": subscription.owner,
                        "channel": subscription.channel,
                        "recipient": subscription.target_label[:255],
                    }
                )
        elif subscription.channel == Channel.EMAIL:
            for member in User.objects.filter(groups=subscription.team.group_id, is_active=True).order_by("pk"):
                email(member, subscription)
        else:  # a team's webhook or chat room, set up by staff
            planned.append(
                {
                    "subscription": subscription,
                    "user": None,
                    "channel": subscription.channel,
                    "recipient": subscription.target_label[:255],
                }
            )
    for user in recipients:
        if user is not None:  # callers may pass an optional person as is (a deployment's requester)
            email(user, None)
    return planned


def notify(
    event: str,
    *,
    environment: Environment,
    deployment=None,
    subject: str,
    body: str,
    url: str,
    recipients: Iterable[User] = (),
    data: dict | None = None,
) -> None:
    """Tell the people and systems concerned that `event` happened on `environment`.

    Call it inside the transaction of the action it reports. It records one Delivery per message
    (to `recipients` by email, unless they opted out, and to every matching active subscription)
    and enqueues them when that transaction commits; it never sends inline. `url` is the page
    to link to (a path such as reverse(...) is made absolute with RELEASEHUB_BASE_URL). `data`
    goes to webhooks as is: never put a secret in it. Raises ValueError for an unknown event or
    data that is not a JSON object (a programming error, not a user's).
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown notification event {event!r}; known: {', '.join(EVENTS)}")
    payload = {
        "subject": str(subject)[:SUBJECT_MAX],
        "body": str(body)[:BODY_MAX],
        "url": absolute_url(str(url)),
        "environment": environment.slug,
        "deployment": deployment.pk if deployment is not None else None,
        "data": _plain(data),
    }
    planned = _plan(event, environment, recipients)
    if not planned:
        return
    now = timezone.now()
    with transaction.atomic():
        ids = [
            Delivery.objects.create(event=event, payload=payload, next_attempt_at=now, **fields).pk
            for fields in planned
        ]
        # robust: a broker that is down must not fail the caller's committed action; resend_lost makes up for it.
        transaction.on_commit(lambda: _enqueue(ids), robust=True)


def _enqueue(delivery_ids: list[int]) -> None:
    from .tasks import deliver

    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)


# --- Delivering (the worker) ---------------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt`: base, 2 * base, 4 * base... (base 10 s: 10, 20, 40, 80)."""
    return float(settings.NOTIFICATION_RETRY_BASE_SECONDS) * 2 ** (attempt - 1)


def _claim(delivery_id: int) -> bool:
    """Take the delivery for one attempt if it is open, due and nobody holds it (one conditional UPDATE, so two
    workers never both send it: duplicate messages are no-ops)."""
    now = timezone.now()
    return bool(
        Delivery.objects.filter(pk=delivery_id, status__in=OPEN_STATUSES)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1)))
        .update(claimed_until=now + CLAIM)
    )


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Attempt one delivery once and record the attempt; returns the seconds until the next attempt when it
    failed and may be retried, else None (sent, given up, or not due / held by another worker).

    After MAX_ATTEMPTS failures, or a failure retrying cannot mend (its subscription was deleted
    or paused, its secret cannot be decrypted), it gives up. The outcome, not each attempt, is
    audited: `notification.delivered` or `notification.failed`. No transaction is held while sending.
    """
    if not _claim(delivery_id):
        return None
    delivery = Delivery.objects.select_related("subscription__environment", "subscription__team", "user").get(
        pk=delivery_id
    )
    started_at, clock = timezone.now(), time.monotonic()
    try:
        outcome = channels.send(delivery)
    except Exception as exc:  # a bug of ours: record it as a failed attempt instead of holding the claim
        logger.exception("sending delivery %s failed", delivery_id)
        outcome = channels.Outcome(False, error=f"Internal error ({type(exc).__name__}); it has been logged.")
    elapsed_ms = int((time.monotonic() - clock) * 1000)
    number = delivery.attempts + 1
    retry_in = None
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            at=started_at,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=elapsed_ms,
        )
        delivery.attempts = number
        delivery.claimed_until = None
        if outcome.ok:
            delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, timezone.now(), ""
            delivery.next_attempt_at = None
        elif outcome.final or number >= MAX_ATTEMPTS:
            delivery.status, delivery.last_error, delivery.next_attempt_at = DeliveryStatus.GAVE_UP, outcome.error, None
        else:
            retry_in = retry_delay(number)
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, outcome.error
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        delivery.save()
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.GAVE_UP):
            audit_record(
                verb="notification.delivered" if outcome.ok else "notification.failed",
                target=delivery,
                summary=f"{delivery.event} by {delivery.channel} to {delivery.recipient}",
                details={
                    "event": delivery.event,
                    "channel": delivery.channel,
                    "recipient": delivery.recipient,
                    "subscription": delivery.subscription_id,
                    "attempts": number,
                    "error": delivery.last_error,
                },
            )
    return retry_in


def resend_lost() -> int:
    """Beat: send again the open deliveries whose time came LOST_AFTER ago and that nobody holds (their
    message was lost: a broker outage at commit, a worker killed mid-send). Returns how many."""
    now = timezone.now()
    lost = list(
        Delivery.objects.filter(status__in=OPEN_STATUSES, next_attempt_at__lte=now - LOST_AFTER)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    _enqueue(lost)
    return len(lost)
