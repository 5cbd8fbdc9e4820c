import os

from django.core.management.base import BaseCommand

from apps.accounts.services import user_ensure


class Command(BaseCommand):
    help = (
        "Create the administrator account if it does not exist. Credentials come from "
        "RELEASEHUB_ADMIN_USERNAME / RELEASEHUB_ADMIN_PASSWORD / RELEASEHUB_ADMIN_EMAIL (default admin / admin)."
    )

    def handle(self, *args, **options) -> None:
        username = os.environ.get("RELEASEHUB_ADMIN_USERNAME", "admin")
        password = os.environ.get("RELEASEHUB_ADMIN_PASSWORD", "admin")
        email = os.environ.get("RELEASEHUB_ADMIN_EMAIL", "admin@example.com")
        _user, created = user_ensure(username=username, password=password, email=email, superuser=True)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Administrator created: {username} / {password}"))
        else:
            self.stdout.write(f"Administrator {username!r} exists already (password unchanged).")
