from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import Team
from apps.accounts.services import team_add_member, team_create, team_role_set, user_ensure

DEMO_PASSWORD = "demo"  # noqa: S105  (documented demo accounts)

TEAMS = [
    ("platform", "Platform", "Runs the shared infrastructure and the production environment."),
    ("payments", "Payments", "Builds payments-api and the ledger."),
    ("storefront", "Storefront", "Builds the web shop and the checkout."),
    ("release-managers", "Release managers", "Approve production deployments."),
    ("auditors", "Auditors", "Read the whole audit trail."),
]

USERS = [
    # username, first, last, teams
    ("alice", "Alice", "Martin", ["payments"]),
    ("bob", "Bob", "Nguyen", ["release-managers", "platform"]),
    ("carol", "Carol", "Schmidt", ["storefront"]),
    ("dave", "Dave", "Okafor", ["auditors"]),
]


class Command(BaseCommand):
    help = f"Load demo teams and people (password {DEMO_PASSWORD!r}). Safe to run again: existing rows are kept."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            teams = {}
            for slug, name, description in TEAMS:
                teams[slug] = Team.objects.filter(slug=slug).first() or team_create(
                    actor=None, slug=slug, name=name, description=description
                )
            team_role_set(actor=None, team=teams["auditors"], role="auditor", enabled=True)
            for username, first, last, member_of in USERS:
                user, _ = user_ensure(
                    username=username,
                    password=DEMO_PASSWORD,
                    email=f"{username}@example.com",
                    first_name=first,
                    last_name=last,
                )
                for slug in member_of:
                    team_add_member(actor=None, team=teams[slug], user=user)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: teams {', '.join(teams)}; people {', '.join(u[0] for u in USERS)} "
                f"(password {DEMO_PASSWORD!r})."
            )
        )
