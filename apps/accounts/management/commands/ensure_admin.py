import os
import secrets

from django.core.management.base import BaseCommand

from apps.accounts.services import user_ensure


class Command(BaseCommand):
    help = (
        "Create the administrator account if it does not exist. Credentials come from "
        "RELEASEHUB_ADMIN_USERNAME / RELEASEHUB_ADMIN_PASSWORD / RELEASEHUB_ADMIN_EMAIL (default admin / admin)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--generate-password",
            action="store_true",
            help="Without RELEASEHUB_ADMIN_PASSWORD, use a random password (printed once) instead of 'admin'.",
        )

    def handle(self, *args, generate_password: bool = False, **options) -> None:
        username = os.environ.get("RELEASEHUB_ADMIN_USERNAME") or "admin"
        password = os.environ.get("RELEASEHUB_ADMIN_PASSWORD") or (
            secrets.token_urlsafe(12) if generate_password else "admin"
        )
        email = os.environ.get("RELEASEHUB_ADMIN_EMAIL") or "admin@example.com"
        _, created = user_ensure(username=username, password=password, email=email, superuser=True)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Administrator created: {username} / {password}"))
        else:
            self.stdout.write(f"Administrator {username!r} exists already (password unchanged).")
