from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Booking


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdmin):
    list_display = ["id", "environment", "title", "starts_at", "ends_at", "status", "team"]
    list_filter = ["status"]
    list_select_related = ["environment", "team"]
