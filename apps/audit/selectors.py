from django.db.models import QuerySet

from .models import AuditEvent


def can_view_all_audit(user) -> bool:
    """Auditors: superusers and holders of the global audit.view_auditevent permission."""
    return user.is_superuser or user.has_perm("audit.view_auditevent")


def audit_events_visible_to(user) -> QuerySet[AuditEvent]:
    """Every event for auditors (the global `audit.view_auditevent` permission); others see their own actions."""
    events = AuditEvent.objects.all()
    return events if can_view_all_audit(user) else events.filter(actor=user)
