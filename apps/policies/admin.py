from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import PolicyOverride, PolicySet, Rule


class RuleInline(admin.TabularInline):
    model = Rule
    fields = ["position", "kind", "params", "overridable", "two_person"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PolicySet)
class PolicySetAdmin(ReadOnlyAdmin):
    """Browse with history; policy sets change on the Policies pages and through the API, whose services check
    and audit every change."""

    list_display = ["name", "slug", "all_environments", "active", "updated_at"]
    list_filter = ["active", "all_environments"]
    search_fields = ["name", "slug"]
    inlines = [RuleInline]


@admin.register(Rule)
class RuleAdmin(ReadOnlyAdmin):
    list_display = ["policy_set", "position", "kind", "overridable", "two_person"]
    list_filter = ["kind"]
    list_select_related = ["policy_set"]


@admin.register(PolicyOverride)
class PolicyOverrideAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "requested_by", "requested_at", "needs_confirmation", "confirmed_by"]
    list_filter = ["needs_confirmation"]
    list_select_related = ["deployment", "requested_by", "confirmed_by"]
