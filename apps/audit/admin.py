from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only (a PostgreSQL trigger enforces it below the admin too)."""

    list_display = ["id", "at", "actor_name", "channel", "ip", "verb", "object_type", "object_id", "summary"]
    list_filter = ["channel", "verb"]
    search_fields = ["actor_name", "verb", "object_type", "object_id", "summary"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
