from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group

from apps.core.admin import AuditedAdminMixin, HistoryAdmin

from .models import ApiToken, Team, User


class NoDeleteMixin:
    """People and tokens are deactivated or revoked, never deleted: audit and history refer to them."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(NoDeleteMixin, AuditedAdminMixin, HistoryAdmin, BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Preferences", {"fields": ("timezone",)}))
    # Team membership and permissions change on the Teams pages, whose services audit every change.
    readonly_fields = ["groups", "user_permissions", "last_login", "date_joined"]
    history_list_display = ["is_active", "is_staff"]


# Groups back teams; they are managed through teams (pages and services), never on their own.
admin.site.unregister(Group)


@admin.register(Team)
class TeamAdmin(NoDeleteMixin, AuditedAdminMixin, HistoryAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["group", "slug"]

    def has_add_permission(self, request) -> bool:
        return False  # created on the Teams page by services.team_create, which also creates the group


@admin.register(ApiToken)
class ApiTokenAdmin(NoDeleteMixin, HistoryAdmin):
    list_display = ["name", "user", "prefix", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "scopes", "expires_at", "last_used_at", "last_used_ip", "revoked_at"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request) -> bool:
        return False
