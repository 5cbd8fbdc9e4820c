from rest_framework import serializers

from ..models import EnvironmentRepository


class RepositorySerializer(serializers.ModelSerializer):
    """An environment's repository. Credentials are named secret variables of the environment, never values."""

    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = EnvironmentRepository
        fields = [
            "environment",
            "url",
            "branch",
            "path",
            "manifest_template",
            "mode",
            "provider",
            "api_url",
            "project",
            "credential_variable",
            "api_token_variable",
            "webhook_secret_variable",
            "health_url",
            "sync_timeout",
            "poll_interval",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["environment", "created_at", "updated_at"]
        # The model's validators run in the service (validated_save), where every path gets them.
        extra_kwargs = {field: {"validators": []} for field in ("url", "branch", "path")}


class WebhookAnswerSerializer(serializers.Serializer):
    provider = serializers.CharField()
    event = serializers.CharField(help_text="The provider's event name, or the operator's status.")
    kind = serializers.CharField(help_text="merged, closed, synced, sync_failed; empty when it concerns nothing here.")
    deployments = serializers.ListField(child=serializers.IntegerField(), help_text="The deployments it woke.")
