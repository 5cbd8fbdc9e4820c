from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Environment, Lifecycle, Target, Variable


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "tier", "owner_team", "requires_booking", "protected"]
    list_filter = ["tier", "protected", "requires_booking"]
    search_fields = ["name", "slug"]
    list_select_related = ["owner_team"]


@admin.register(Target)
class TargetAdmin(ReadOnlyAdmin):
    list_display = ["name", "environment", "address", "slot"]
    list_filter = ["slot", "environment"]
    search_fields = ["name", "address"]
    list_select_related = ["environment"]


@admin.register(Variable)
class VariableAdmin(ReadOnlyAdmin):
    list_display = ["name", "environment", "target", "display_value", "secret"]
    list_filter = ["secret", "environment"]
    search_fields = ["name"]
    list_select_related = ["environment", "target"]
    exclude = ["value"]  # ciphertext for secrets; display_value masks them
    readonly_fields = ["display_value"]


@admin.register(Lifecycle)
class LifecycleAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug"]
