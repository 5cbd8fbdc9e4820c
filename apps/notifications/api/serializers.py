"""Notifications API: subscriptions (secrets write-only) and the deliveries log. Writes happen in services."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Team

from ..events import EVENT_CHOICES, EVENTS
from ..models import Channel, Delivery, DeliveryAttempt, Subscription
from ..services import APPRISE_URL_MAX_LENGTH, SECRET_MAX_LENGTH

EVENTS_HELP = "Event names: " + ", ".join(f"`{name}` ({label.lower()})" for name, label in EVENTS.items()) + "."


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as read: the webhook secret and the apprise URL are never returned."""

    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username, or null."
    )
    team = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="Team slug, or null."
    )
    environment = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="Environment slug; null: every environment."
    )
    url = serializers.CharField(read_only=True, help_text="Webhooks: where it POSTs; empty for other channels.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), read_only=True)
    target = serializers.CharField(source="target_label", read_only=True, help_text="Where it sends, masked.")
    has_secret = serializers.SerializerMethodField(help_text="Whether a webhook signing secret is set.")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "owner",
            "team",
            "events",
            "environment",
            "channel",
            "url",
            "target",
            "has_secret",
            "active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_secret(self, subscription: Subscription) -> bool:
        return bool(subscription.secret_encrypted)


class _SubscriptionInput(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        min_length=1,
        max_length=len(EVENTS),
        help_text=EVENTS_HELP,
    )
    environment = serializers.SlugField(
        required=False, allow_null=True, help_text="Slug of an environment you may view; null or absent: all."
    )
    url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, help_text="Webhooks: the http(s) URL to POST to."
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=SECRET_MAX_LENGTH,
        help_text="Webhooks: the HMAC-SHA256 signing secret (16 to 256 characters). Encrypted, never returned.",
    )
    apprise_url = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=APPRISE_URL_MAX_LENGTH,
        help_text="Chat: an apprise URL such as `slack://TokenA/TokenB/TokenC/#releases`. Encrypted, never returned.",
    )
    active = serializers.BooleanField(required=False, help_text="False pauses it (and opts you out of these emails).")


class SubscriptionCreateSerializer(_SubscriptionInput):
    channel = serializers.ChoiceField(choices=Channel.choices)
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="Staff only: subscribe a team instead of yourself.",
    )
    active = serializers.BooleanField(default=True, help_text="False creates it paused.")


class SubscriptionUpdateSerializer(_SubscriptionInput):
    """PATCH: every field optional; the channel and whose it is do not change."""

    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        min_length=1,
        max_length=len(EVENTS),
        required=False,
        help_text=EVENTS_HELP,
    )


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "ok", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    subject = serializers.CharField(read_only=True)
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True, help_text="Every attempt, oldest first.")
    payload = serializers.SerializerMethodField(
        help_text="What was sent: subject, body, url, data, environment, deployment."
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "subscription",
            "event",
            "channel",
            "recipient",
            "status",
            "attempts",
            "last_error",
            "subject",
            "payload",
            "created_at",
            "sent_at",
            "attempt_log",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_payload(self, delivery: Delivery) -> dict:
        return delivery.payload
