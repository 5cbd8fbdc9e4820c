from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from simple_history.admin import SimpleHistoryAdmin

from .models import ApiToken, Team, User


class NoDeleteMixin:
    """People and tokens are deactivated or revoked, never deleted: audit and history refer to them."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(NoDeleteMixin, SimpleHistoryAdmin, BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Preferences", {"fields": ("timezone",)}))
    history_list_display = ["is_active", "is_staff"]


@admin.register(Team)
class TeamAdmin(SimpleHistoryAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["group"]

    def has_add_permission(self, request) -> bool:
        return False  # created by services.team_create (pages, seed_demo), which also creates the group


@admin.register(ApiToken)
class ApiTokenAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["name", "user", "prefix", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "scopes", "expires_at", "last_used_at", "last_used_ip", "revoked_at"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request) -> bool:
        return False
