from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import EnvironmentRepository


@admin.register(EnvironmentRepository)
class EnvironmentRepositoryAdmin(ReadOnlyAdmin):
    """Browse with history; changes go through the environment's pages, the API or configuration as code, whose
    service (apps.gitops.services.repository_set) checks the template and the secret variables, and audits."""

    list_display = ["environment", "url", "branch", "path", "mode", "provider", "updated_at"]
    list_filter = ["mode", "provider"]
    search_fields = ["environment__name", "environment__slug", "url", "path"]
    list_select_related = ["environment"]
