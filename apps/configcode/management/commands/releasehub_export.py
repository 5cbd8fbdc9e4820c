from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.configcode.export import config_export


class Command(BaseCommand):
    help = (
        "Print the configuration (environments, targets, variables, repositories, templates, lifecycles, approval "
        "policies, policy sets, freezes) as YAML: everything, or what --user may view. Secrets are left out unless "
        "--include-secrets, which writes their ciphertexts (never plaintext)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")
        parser.add_argument("--include-secrets", action="store_true", help="Include secrets' ciphertexts.")
        parser.add_argument("--user", help="Export what this user may view (default: everything).")

    def handle(self, *args, output=None, include_secrets=False, user=None, **options) -> None:
        actor = None
        if user:
            actor = User.objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {user!r}.")
        text = config_export(user=actor, include_secrets=include_secrets)
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
            self.stderr.write(f"Wrote {output}.")
        else:
            self.stdout.write(text, ending="")
