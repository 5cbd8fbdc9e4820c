from rest_framework import serializers

from apps.accounts.models import Team
from apps.environments.models import Environment
from apps.releases.models import Release

from ..models import Booking


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
