"""Sending one delivery through its channel: email (Django's mail backend), webhook (a signed JSON POST),
chat (apprise). Each returns an Outcome and never raises for a failure of the other side.

Runs in the worker only: this is where secrets are decrypted, and every error text is
masked before it leaves (masks.mask_text).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse
from django.utils import timezone

from apps.core.crypto import InvalidToken, decrypt

from .events import EVENTS
from .masks import mask_text
from .models import Channel, Delivery, Subscription

WEBHOOK_TIMEOUT = 10  # seconds, connecting and reading each
USER_AGENT = "ReleaseHub-Webhook/1"
SIGNATURE_HEADER = "X-ReleaseHub-Signature-256"


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: `ok`, the HTTP status if any, a masked error; `final` when retrying is pointless."""

    ok: bool
    status_code: int | None = None
    error: str = ""
    final: bool = False


def absolute_url(path_or_url: str) -> str:
    """An absolute link: `path_or_url` as is when it has a scheme, else joined to RELEASEHUB_BASE_URL."""
    if path_or_url.startswith(("http://", "https://")):
        return path_or_url
    return settings.RELEASEHUB_BASE_URL.rstrip("/") + "/" + path_or_url.lstrip("/")


def sign(body: bytes, secret: str) -> str:
    """The X-ReleaseHub-Signature-256 value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(delivery: Delivery) -> Outcome:
    """Attempt `delivery` once through its channel."""
    subscription = delivery.subscription
    if delivery.subscription_id is None and delivery.channel != Channel.EMAIL:
        return Outcome(False, error="Its subscription was deleted before it could be sent.", final=True)
    if subscription is not None and not subscription.active:
        return Outcome(False, error="Its subscription was paused before it could be sent.", final=True)
    try:
        if delivery.channel == Channel.EMAIL:
            return send_email(delivery)
        if delivery.channel == Channel.WEBHOOK:
            return send_webhook(delivery, subscription)
        return send_chat(delivery, subscription)
    except InvalidToken:
        return Outcome(
            False, error="The subscription's secret cannot be decrypted (was the encryption key changed?).", final=True
        )


# --- Email ---------------------------------------------------------------------------------------------


def _why(delivery: Delivery) -> str:
    subscription = delivery.subscription
    if subscription is None:
        return "You receive this because this event concerns you (for example, you may approve this deployment)."
    where = subscription.environment.name if subscription.environment_id else "every environment"
    if subscription.team_id:
        return f"You receive this because team {subscription.team.name} subscribed to it on {where}."
    return f"You receive this because you subscribed to it on {where}."


def email_text(delivery: Delivery) -> tuple[str, str]:
    """The subject and plain-text body of an email delivery; approval requests sent to a named person
    carry their personal approve and reject links."""
    from .links import action_link  # links read deployments; imported when an email is built

    payload = delivery.payload
    lines = [payload.get("body", ""), "", f"Open it: {payload.get('url', '')}"]
    if (
        delivery.event == "approval.requested"
        and delivery.subscription_id is None
        and delivery.user is not None
        and payload.get("deployment")
    ):
        from apps.deployments.models import Deployment

        deployment = Deployment.objects.filter(pk=payload["deployment"]).first()
        if deployment is not None:
            lines += [
                "",
                "Decide from here (you confirm on the page that opens):",
                f"  Approve: {action_link(delivery.user, deployment, 'approve')}",
                f"  Reject:  {action_link(delivery.user, deployment, 'reject')}",
            ]
    lines += [
        "",
        "-- ",
        f"ReleaseHub · {EVENTS.get(delivery.event, delivery.event)}",
        _why(delivery),
        f"Your notifications: {absolute_url(reverse('notifications:index'))}",
    ]
    return f"[ReleaseHub] {payload.get('subject', '')}", "\n".join(lines)


def send_email(delivery: Delivery) -> Outcome:
    subject, body = email_text(delivery)
    # One message per address: recipients never see each other.
    message = EmailMessage(subject=subject.replace("\n", " "), body=body, to=[delivery.recipient])
    message.extra_headers["X-ReleaseHub-Event"] = delivery.event
    try:
        sent = message.send(fail_silently=False)
    except Exception as exc:  # SMTP, socket and backend errors alike: the attempt failed, the worker goes on
        return Outcome(False, error=mask_text(f"{type(exc).__name__}: {exc}"))
    return Outcome(bool(sent), error="" if sent else "The mail backend sent nothing.")


# --- Webhook -------------------------------------------------------------------------------------------


def webhook_body(delivery: Delivery) -> bytes:
    """The JSON document POSTed: event, subject, body, url, data, sent_at, delivery_id (UTF-8 bytes)."""
    payload = delivery.payload
    document = {
        "event": delivery.event,
        "subject": payload.get("subject", ""),
        "body": payload.get("body", ""),
        "url": payload.get("url", ""),
        "data": payload.get("data", {}),
        "sent_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "delivery_id": delivery.pk,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")).encode()


def send_webhook(delivery: Delivery, subscription: Subscription) -> Outcome:
    secret = decrypt(subscription.secret_encrypted) if subscription.secret_encrypted else ""
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-ReleaseHub-Event": delivery.event,
        "X-ReleaseHub-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(body, secret),
    }
    try:
        # Redirects are not followed: the receiver answers, or the attempt failed.
        response = requests.post(
            subscription.url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return Outcome(False, error=mask_text(f"{type(exc).__name__}: {exc}", subscription.url, secret))
    if 200 <= response.status_code < 300:
        return Outcome(True, status_code=response.status_code)
    snippet = response.text[:200].strip()
    error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
    return Outcome(False, status_code=response.status_code, error=mask_text(error, subscription.url, secret))


# --- Chat (apprise) ------------------------------------------------------------------------------------


def send_chat(delivery: Delivery, subscription: Subscription) -> Outcome:
    import apprise  # loads its plugins: only in the worker that sends chat messages

    target = decrypt(subscription.apprise_url_encrypted)
    payload = delivery.payload
    service = apprise.Apprise()
    if not service.add(target):
        return Outcome(False, error="apprise does not recognise the subscription's URL.", final=True)
    body = f"{payload.get('body', '')}\n\n{payload.get('url', '')}".strip()
    with apprise.LogCapture(level=logging.WARNING) as log:
        try:
            ok = bool(service.notify(title=payload.get("subject", ""), body=body))
        except Exception as exc:  # a plugin's own bug must not kill the worker: record it, retry
            return Outcome(False, error=mask_text(f"{type(exc).__name__}: {exc}", target))
        messages = log.getvalue().strip()
    if ok:
        return Outcome(True)
    return Outcome(False, error=mask_text(messages or "The chat service refused the message.", target))
