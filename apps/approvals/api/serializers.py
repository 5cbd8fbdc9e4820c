from datetime import timedelta

from rest_framework import serializers

from apps.accounts.models import Team

from ..models import ApprovalPolicy


class ApprovalPolicySerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    eligible_teams = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Team.objects.all(), required=False
    )
    expires_after_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=60,
        max_value=30 * 24 * 3600,
        help_text="An unanswered request expires after this many seconds (the deployment is rejected). Null: never.",
    )

    class Meta:
        model = ApprovalPolicy
        fields = ["environment", "required_approvals", "eligible_teams", "expires_after_seconds", "rejection_rejects"]
        read_only_fields = ["environment"]

    def to_representation(self, policy):
        data = super().to_representation(policy)
        data["expires_after_seconds"] = int(policy.expires_after.total_seconds()) if policy.expires_after else None
        return data

    def service_kwargs(self) -> dict:
        data = dict(self.validated_data)
        seconds = data.pop("expires_after_seconds", None)
        data["expires_after"] = timedelta(seconds=seconds) if seconds else None
        return data
