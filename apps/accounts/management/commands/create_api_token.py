import re
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import token_create
from apps.core.errors import ReleaseHubError

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """A --expires-in value such as 90d, 12h or 30m."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise CommandError(f"--expires-in: expected a number and d, h or m (e.g. 90d), got {text!r}.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="Label of the token (default: cli-<date>).")
        parser.add_argument(
            "--scopes", nargs="+", default=["read"], choices=list(settings.API_TOKEN_SCOPES), help="Default: read."
        )
        parser.add_argument("--expires-in", default=None, help="e.g. 90d, 12h; default: never.")

    def handle(self, *args, username: str, name: str, scopes: list[str], expires_in: str | None, **options) -> None:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        expires_at = timezone.now() + parse_duration(expires_in) if expires_in else None
        try:
            token, raw = token_create(
                user=user, name=name or f"cli-{timezone.now():%Y-%m-%d}", scopes=scopes, expires_at=expires_at
            )
        except ReleaseHubError as exc:
            raise CommandError(exc.detail) from exc
        self.stderr.write(f"Token {token.name!r} for {username} with scopes {', '.join(token.scopes)}:")
        self.stdout.write(raw)
