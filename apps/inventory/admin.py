from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Installation, Observation


@admin.register(Installation)
class InstallationAdmin(ReadOnlyAdmin):
    list_display = ["target", "application", "artifact", "environment", "since", "until", "current"]
    list_filter = ["current", "environment", "application"]
    list_select_related = ["target", "application", "artifact", "environment"]


@admin.register(Observation)
class ObservationAdmin(ReadOnlyAdmin):
    list_display = ["target", "application", "version", "digest", "source", "observed_at", "drifted"]
    list_filter = ["drifted", "source", "environment"]
    list_select_related = ["target", "application", "environment"]
