import json

from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
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


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's admin, with history to read and never to revert: history is a record, and every
    write goes through the services. (simple-history's history form saves a POST whatever its settings.)"""

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied("History is read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyAdmin(HistoryAdmin):
    """Browse with history; changes go through the pages and the API, whose services check and audit them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
