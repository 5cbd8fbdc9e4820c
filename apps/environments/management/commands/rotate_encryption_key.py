from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ReleaseHubError
from apps.environments.services import secrets_rotate
from apps.notifications.services import subscription_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret (variables, notification secrets) with the first key of RELEASEHUB_ENCRYPTION_KEY. "
        "Rotate by setting RELEASEHUB_ENCRYPTION_KEY=<new key>,<old key>, running this command, "
        "then dropping the old key."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = secrets_rotate() + subscription_secrets_rotate()
        except ReleaseHubError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secret(s) with the current key."))
        self.stdout.write(
            "History keeps the earlier ciphertexts (it is append-only): if the old key leaked, change the secrets too."
        )
