from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Application, Artifact


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "owner_team", "repository_url"]
    search_fields = ["name", "slug"]
    list_select_related = ["owner_team"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["application", "version", "branch", "digest", "registered_at", "registered_by"]
    list_filter = ["application"]
    search_fields = ["version", "digest", "commit", "branch"]
    list_select_related = ["application", "registered_by"]
