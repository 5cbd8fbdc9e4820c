from rest_framework import serializers

from apps.catalog.api.serializers import StrictCharField
from apps.catalog.models import VERSION

from ..models import Release, ReleaseArtifact
from ..services import MAX_ARTIFACTS, NOTES_MAX_LENGTH


def _artifact_ids(**kwargs) -> serializers.ListField:
    # Ids are 64-bit integers: a larger number cannot name anything (and would overflow the query).
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=MAX_ARTIFACTS,
        help_text=f"Ids of artifacts of the application, 1 to {MAX_ARTIFACTS}, in order: the first is the primary one.",
        **kwargs,
    )


class ReleaseCreateSerializer(serializers.Serializer):
    """What a client sends to create a release (API.md "Releases and deployments")."""

    application = serializers.SlugField(max_length=50, help_text="Slug of the application.")
    version = StrictCharField(
        max_length=128,
        validators=[VERSION],
        required=False,
        allow_blank=True,
        help_text="e.g. 1.4.2; defaults to the primary artifact's version.",
    )
    artifacts = _artifact_ids()
    notes = serializers.CharField(max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True, trim_whitespace=False)


class ReleaseUpdateSerializer(serializers.Serializer):
    """A release's notes and artifact list can change until a deployment uses it; application and version never."""

    notes = serializers.CharField(max_length=NOTES_MAX_LENGTH, required=False, allow_blank=True, trim_whitespace=False)
    artifacts = _artifact_ids(required=False)


class ReleaseArtifactSerializer(serializers.ModelSerializer):
    """One artifact of a release, in release order."""

    id = serializers.IntegerField(source="artifact.id", read_only=True)
    version = serializers.CharField(source="artifact.version", read_only=True)
    digest = serializers.CharField(source="artifact.digest", read_only=True)
    uri = serializers.CharField(source="artifact.uri", read_only=True)

    class Meta:
        model = ReleaseArtifact
        fields = ["id", "version", "digest", "uri"]
        read_only_fields = fields


class ReleaseSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    artifacts = ReleaseArtifactSerializer(
        source="release_artifacts", many=True, read_only=True, help_text="In order: the first is the primary one."
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="null when the system created it."
    )
    in_use = serializers.BooleanField(
        read_only=True, help_text="A deployment used this release: it can no longer change or be deleted."
    )

    class Meta:
        model = Release
        fields = [
            "id",
            "application",
            "version",
            "notes",
            "artifacts",
            "created_by",
            "created_at",
            "updated_at",
            "in_use",
        ]
        read_only_fields = fields
