from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.configcode.services import config_import
from apps.core.context import Channel, acting
from apps.core.errors import ReleaseHubError


class Command(BaseCommand):
    help = (
        "Compare a configuration YAML file (from releasehub_export) with the database and print the changes; "
        "with --apply, make them. Nothing is ever deleted. Exit status 1 with the errors on invalid input."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The YAML file.")
        parser.add_argument("--apply", action="store_true", help="Make the changes (default: a dry run).")
        parser.add_argument("--user", help="Import as this user, with their permissions (default: the system).")

    def handle(self, *args, file, apply=False, user=None, **options) -> None:
        actor = None
        if user:
            actor = User.objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {user!r}.")
        try:
            with open(file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            with acting(channel=Channel.CLI, user=actor):
                plan = config_import(actor=actor, text=text, filename=file, dry_run=not apply)
        except ReleaseHubError as exc:
            lines = [exc.detail, *(f"  {name}: {' '.join(messages)}" for name, messages in (exc.fields or {}).items())]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(plan.text())
        if not apply and plan.changed:
            self.stdout.write("Dry run: nothing was changed. Run again with --apply to make these changes.")
