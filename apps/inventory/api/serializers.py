from rest_framework import serializers

from ..models import Installation


class InstallationSerializer(serializers.ModelSerializer):
    """What runs on one target now: which build of which application, since when, put there by which deployment."""

    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target = serializers.SlugRelatedField(slug_field="name", read_only=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.CharField(source="artifact.version", read_only=True)
    digest = serializers.CharField(source="artifact.digest", read_only=True)
    deployed_by = serializers.SerializerMethodField()

    class Meta:
        model = Installation
        fields = [
            "environment",
            "target",
            "application",
            "artifact",
            "version",
            "digest",
            "since",
            "deployment",
            "deployed_by",
        ]
        read_only_fields = fields

    def get_deployed_by(self, installation) -> str | None:
        user = installation.deployment.created_by
        return user.username if user else None
