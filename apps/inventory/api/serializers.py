from rest_framework import serializers

from apps.catalog.models import Application

from ..models import Installation, Observation


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


class TargetReportSerializer(serializers.Serializer):
    """What a target runs: the application and its version, or the digest of the build (or both)."""

    application = serializers.SlugField(max_length=50)
    version = serializers.CharField(max_length=128, required=False, default="")
    digest = serializers.RegexField(r"^sha256:[0-9a-f]{64}$", required=False, default="")

    def validate_application(self, slug):
        application = Application.objects.filter(slug=slug).first()  # target_report checks it may be seen
        if application is None:
            raise serializers.ValidationError(f"No such application: {slug!r}.")
        return application


class ObservationSerializer(serializers.ModelSerializer):
    """The last reading of one target for one application, and whether it differs from what was deployed."""

    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target = serializers.SlugRelatedField(slug_field="name", read_only=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    recorded_version = serializers.CharField(source="expected.version", read_only=True, default=None)
    recorded_digest = serializers.CharField(source="expected.digest", read_only=True, default=None)

    class Meta:
        model = Observation
        fields = [
            "environment",
            "target",
            "application",
            "version",
            "digest",
            "source",
            "observed_at",
            "recorded_version",
            "recorded_digest",
            "drifted",
            "drifted_since",
        ]
        read_only_fields = fields


class DriftReadingSerializer(serializers.Serializer):
    """One target's reading in a drift check: the observation, or why nothing could be read."""

    target = serializers.CharField(source="target.name")
    observation = ObservationSerializer(allow_null=True)
    problem = serializers.CharField()


class CompareSideSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    tier = serializers.CharField()


class CompareSerializer(serializers.Serializer):
    """Two environments side by side. Rows have `status` same, different, only_left or only_right; secret
    variables show the mask on both sides and differ only when their plaintexts do."""

    left = CompareSideSerializer()
    right = CompareSideSerializer()
    generated_at = serializers.DateTimeField()
    applications = serializers.ListField(child=serializers.DictField(), help_text="Deployed versions per application.")
    variables = serializers.ListField(child=serializers.DictField(), help_text="Variables that differ.")
    identical_variables = serializers.IntegerField()
    secrets_not_compared = serializers.IntegerField(
        help_text="Secrets on both sides left uncompared: equality is shown to people who may manage both."
    )
    targets = serializers.ListField(child=serializers.DictField())
    settings = serializers.ListField(child=serializers.DictField(), help_text="Environment settings that differ.")
    default_template = serializers.DictField()
    approval_policy = serializers.DictField()
    freezes = serializers.DictField(help_text="Active freezes applying to both, or to one side only.")
