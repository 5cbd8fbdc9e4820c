from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Deployment, DeploymentTemplate, StepRun, TemplateVersion


@admin.register(DeploymentTemplate)
class DeploymentTemplateAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "version", "updated_at"]
    search_fields = ["name", "slug"]


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ["template", "number", "created_by", "created_at"]
    list_select_related = ["template", "created_by"]


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "application", "release", "environment", "status", "strategy", "created_by", "created_at"]
    list_filter = ["status", "strategy", "environment"]
    list_select_related = ["application", "release__application", "environment", "created_by"]


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    """Execution records: read-only (no history table of their own)."""

    list_display = ["deployment", "action", "phase", "step", "target_name", "name", "status", "attempt"]
    list_filter = ["status", "kind"]
    list_select_related = ["deployment"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
