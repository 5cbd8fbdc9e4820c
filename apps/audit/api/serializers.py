from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="Username at the time, or `system`.")
    token = serializers.CharField(source="token_prefix", help_text="Prefix of the API token used, if any.")
    details = serializers.JSONField(read_only=True, help_text="What the action concerned (never secret values).")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "token",
            "channel",
            "ip",
            "verb",
            "object_type",
            "object_id",
            "summary",
            "details",
            "hash",
            "prev_hash",
        ]
        read_only_fields = fields
