import json

from django.contrib.admin.models import LogEntry
from simple_history.admin import SimpleHistoryAdmin

from apps.audit.services import audit_record


class AuditedAdminMixin:
    """Record every add and change made in the admin as an audit event, like the services do.

    Django calls log_addition/log_change inside the admin's transaction, after saving.
    """

    def log_addition(self, request, obj, message):
        audit_record(verb=f"{obj._meta.model_name}.created_in_admin", target=obj, details=_changes(message))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit_record(verb=f"{obj._meta.model_name}.changed_in_admin", target=obj, details=_changes(message))
        return super().log_change(request, obj, message)


def _changes(message) -> dict:
    """The admin's change message ("Changed is_active and email.") as plain text."""
    entry = LogEntry(change_message=json.dumps(message) if isinstance(message, list) else message)
    return {"changes": entry.get_change_message()}


class ReadOnlyAdmin(SimpleHistoryAdmin):
    """Browse with history; changes go through the pages and the API, whose services check and audit them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
