from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Release, ReleaseArtifact


class ReleaseArtifactInline(admin.TabularInline):
    """The release's artifacts in order (read-only: the services change them)."""

    model = ReleaseArtifact
    fields = ["position", "artifact"]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("artifact__application")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ["application", "version", "created_at", "created_by"]
    list_filter = ["application"]
    search_fields = ["version", "notes", "application__slug"]
    list_select_related = ["application", "created_by"]
    inlines = [ReleaseArtifactInline]
