from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import Delivery, DeliveryAttempt, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    """Browse with history; people change their subscriptions on /notifications/ and the API, whose services
    encrypt secrets and audit changes. Secrets are never shown: only the masked target."""

    list_display = ["id", "owner", "team", "channel", "environment", "target_label", "active", "created_at"]
    list_filter = ["channel", "active"]
    search_fields = ["owner__username", "team__slug"]
    list_select_related = ["owner", "team", "environment"]
    exclude = ["secret_encrypted", "apprise_url_encrypted"]
    readonly_fields = ["target_label"]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "at", "ok", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The record of what was sent: read-only, with its attempts."""

    list_display = ["id", "event", "channel", "recipient", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel", "event"]
    search_fields = ["recipient"]
    list_select_related = ["subscription", "user"]
    inlines = [DeliveryAttemptInline]
