from rest_framework import serializers

from apps.accounts.models import Team
from apps.deployments.models import DeploymentTemplate
from apps.environments.api.serializers import LABELS
from apps.environments.models import Lifecycle

from ..models import DIGEST, URI, VERSION, Application, Artifact, CdTrigger


class ApplicationSerializer(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    default_template = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=DeploymentTemplate.objects.all(),
        required=False,
        allow_null=True,
        help_text="Slug of the deployment template its deployments use unless a request names one.",
    )

    lifecycle = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Lifecycle.objects.all(),
        required=False,
        allow_null=True,
        help_text="Slug of the lifecycle its releases are promoted through.",
    )

    class Meta:
        model = Application
        fields = [
            "slug",
            "name",
            "description",
            "owner_team",
            "repository_url",
            "default_template",
            "lifecycle",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"slug": {"validators": []}}  # uniqueness: the service answers 409


class ApplicationUpdateSerializer(ApplicationSerializer):
    class Meta(ApplicationSerializer.Meta):
        read_only_fields = ["slug", "created_at", "updated_at"]


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF would turn the number 1.10 into the text "1.1", another version."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ArtifactRegisterSerializer(serializers.Serializer):
    """What CI sends to register a build (API.md "Catalog")."""

    application = serializers.SlugField(max_length=50, help_text="Slug of the application.")
    version = StrictCharField(max_length=128, validators=[VERSION], help_text="e.g. 1.4.2 or 1.5.0-rc.1")
    digest = serializers.CharField(max_length=71, validators=[DIGEST], help_text="sha256:<64 lowercase hex digits>")
    uri = serializers.CharField(max_length=2048, validators=[URI], help_text="Where the build can be fetched.")
    commit = serializers.RegexField(r"^[0-9a-f]{7,64}$", required=False, allow_blank=True, help_text="Commit hash.")
    branch = serializers.CharField(max_length=255, required=False, allow_blank=True)
    build_url = serializers.URLField(max_length=2048, required=False, allow_blank=True)
    labels = serializers.JSONField(required=False, **LABELS)


class ArtifactSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    registered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    registered_token = serializers.SlugRelatedField(
        slug_field="prefix", read_only=True, help_text="Prefix of the API token that registered it, if any."
    )

    class Meta:
        model = Artifact
        fields = [
            "id",
            "application",
            "version",
            "digest",
            "uri",
            "commit",
            "branch",
            "build_url",
            "labels",
            "registered_at",
            "registered_by",
            "registered_token",
        ]
        read_only_fields = fields


class CdTriggerSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", queryset=Application.objects.all())
    lifecycle = serializers.SlugRelatedField(slug_field="slug", queryset=Lifecycle.objects.all())

    class Meta:
        model = CdTrigger
        fields = ["id", "application", "branch_pattern", "lifecycle", "position", "active"]
        read_only_fields = ["id"]


class CdTriggerUpdateSerializer(CdTriggerSerializer):
    class Meta(CdTriggerSerializer.Meta):
        read_only_fields = ["id", "application"]
