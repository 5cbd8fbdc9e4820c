"""Signed action links: an approver opens a link from an email and confirms approve or reject on a page.

The token names the person, the deployment and the action, signed with SECRET_KEY
(django.core.signing) and valid for ACTION_LINK_MAX_AGE. It authorizes nothing by
itself: the page needs the same person signed in, changes nothing on GET, and the decision
goes through apps.approvals.services with every rule they check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.urls import reverse

from .channels import absolute_url

SALT = "releasehub.action"
ACTION_LINK_MAX_AGE = timedelta(hours=72)
ACTIONS = ("approve", "reject")


class InvalidActionLink(Exception):
    """The token is forged, damaged, expired or not an action token; `reason` says which, for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActionClaims:
    user_id: int
    deployment_id: int
    action: str


def action_token(user, deployment, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    return signing.dumps({"u": user.pk, "d": deployment.pk, "a": action}, salt=SALT)


def action_link(user, deployment, action: str) -> str:
    """The absolute URL of the confirmation page that lets `user` approve or reject `deployment`."""
    return absolute_url(reverse("notifications:act", args=[action_token(user, deployment, action)]))


def read_action_token(token: str) -> ActionClaims:
    """The claims of a valid token. Raises InvalidActionLink (expired, forged or malformed)."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=ACTION_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise InvalidActionLink("This link has expired: links in notifications work for 72 hours.") from None
    except signing.BadSignature:
        raise InvalidActionLink("This link is not valid: it was changed or cut short.") from None
    if (
        not isinstance(claims, dict)
        or not isinstance(claims.get("u"), int)
        or not isinstance(claims.get("d"), int)
        or claims.get("a") not in ACTIONS
    ):
        raise InvalidActionLink("This link is not valid: it was changed or cut short.")
    return ActionClaims(user_id=claims["u"], deployment_id=claims["d"], action=claims["a"])
