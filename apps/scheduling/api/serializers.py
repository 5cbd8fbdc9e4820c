from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Team
from apps.deployments.models import DeploymentTemplate, Strategy
from apps.environments.models import Environment
from apps.releases.models import Release

from ..models import Booking, FreezeWindow


class BookingSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "environment",
            "starts_at",
            "ends_at",
            "title",
            "notes",
            "status",
            "team",
            "requested_by",
            "release",
            "deployment",
            "decided_by",
            "decided_at",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BookingCreateSerializer(serializers.Serializer):
    environment = serializers.SlugRelatedField(slug_field="slug", queryset=Environment.objects.all())
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    title = serializers.CharField(max_length=200)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    release = serializers.PrimaryKeyRelatedField(queryset=Release.objects.all(), required=False, allow_null=True)
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="One of your teams; default: your team that may book the environment.",
    )

    def validate(self, data):
        if data["ends_at"] <= data["starts_at"]:
            raise serializers.ValidationError({"ends_at": ["Must be after starts_at."]})
        return data


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class FreezeSerializer(serializers.ModelSerializer):
    environments = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = FreezeWindow
        fields = [
            "id",
            "title",
            "reason",
            "environments",
            "starts_at",
            "ends_at",
            "rrule",
            "exdates",
            "timezone",
            "active",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_environments(self, window) -> list[str] | str:
        return "all" if window.all_environments else sorted(e.slug for e in window.environments.all())


@extend_schema_field(
    {"oneOf": [{"type": "string", "enum": ["all"]}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
)
class EnvironmentsField(serializers.Field):
    """ "all", or a list of environment slugs."""

    def to_internal_value(self, data):
        if data == "all":
            return "all"
        if not isinstance(data, list) or not data or not all(isinstance(slug, str) for slug in data):
            raise serializers.ValidationError('Give "all" or a list of environment slugs.')
        found = list(Environment.objects.filter(slug__in=data))
        missing = sorted(set(data) - {e.slug for e in found})
        if missing:
            raise serializers.ValidationError(f"Unknown environments: {', '.join(missing)}.")
        return found

    def to_representation(self, value):
        return value


class FreezeCreateSerializer(serializers.Serializer):
    environments = EnvironmentsField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(help_text="The end of the first occurrence.")
    rrule = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    exdates = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    timezone = serializers.CharField(required=False, default="UTC", max_length=64)
    reason = serializers.CharField(max_length=2000)
    title = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    @staticmethod
    def service_kwargs(validated: dict) -> dict:
        """freeze_create's keyword arguments."""
        data = dict(validated)
        environments = data.pop("environments")
        zone = data.pop("timezone")
        return {
            **data,
            "title": data["title"] or data["reason"][:80],
            "timezone_name": zone,
            "all_environments": environments == "all",
            "environments": [] if environments == "all" else environments,
        }


class BookingDeploySerializer(serializers.Serializer):
    release = serializers.PrimaryKeyRelatedField(queryset=Release.objects.all(), required=False, allow_null=True)
    strategy = serializers.ChoiceField(choices=Strategy.choices, required=False)
    strategy_options = serializers.DictField(required=False)
    template = serializers.SlugRelatedField(
        slug_field="slug", queryset=DeploymentTemplate.objects.all(), required=False, allow_null=True
    )
