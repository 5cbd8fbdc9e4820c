from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import audit_chain_check


class Command(BaseCommand):
    help = "Walk the audit hash chain; print OK or the first broken event (exit status 1)."

    def handle(self, *args, **options) -> None:
        report = audit_chain_check()
        if not report.ok:
            raise CommandError(
                f"BROKEN at audit event #{report.broken_id}: {report.reason}. "
                f"{report.checked} events before it are intact."
            )
        self.stdout.write(self.style.SUCCESS(f"OK: {report.checked} events verified, head {report.head_hash[:16]}…"))
