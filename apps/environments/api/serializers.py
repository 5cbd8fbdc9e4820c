"""Environments API: input validation and output shapes. Writes happen in services."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.accounts.models import Team
from apps.deployments.models import DeploymentTemplate, Strategy

from ..choices import Slot, Tier
from ..models import Environment, Lifecycle, Target, Variable
from ..validators import validate_attributes, validate_labels, validate_timezone


def _django_validator(validator):
    """A Django model validator as a DRF field validator."""

    def run(value):
        try:
            validator(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    return run


LABELS = {"validators": [_django_validator(validate_labels)], "help_text": 'Strings by key, e.g. {"team": "payments"}.'}


class EnvironmentSerializer(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.DEVELOPMENT)
    timezone = serializers.CharField(max_length=64, default="UTC", validators=[_django_validator(validate_timezone)])
    labels = serializers.JSONField(required=False, **LABELS)
    default_template = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=DeploymentTemplate.objects.all(),
        required=False,
        allow_null=True,
        help_text="Slug of the deployment template used when neither the request nor the application names one.",
    )

    default_strategy = serializers.ChoiceField(
        choices=Strategy.choices,
        required=False,
        allow_blank=True,
        help_text="Used by deployments that name no strategy (all_at_once when blank).",
    )
    default_strategy_options = serializers.JSONField(
        required=False, help_text="Options of the default strategy (see /api/v1/deployment-strategies/)."
    )
    traffic_hook = serializers.JSONField(
        required=False,
        help_text='Blue/green: {"kind": "shell" or "http", "params": {...}} run by switch_traffic, templated with '
        "{{ traffic.slot }}, {{ traffic.weight }}, {{ traffic.targets }}; {} for none.",
    )

    class Meta:
        model = Environment
        fields = [
            "slug",
            "name",
            "tier",
            "owner_team",
            "default_template",
            "timezone",
            "labels",
            "description",
            "requires_booking",
            "booking_min_minutes",
            "booking_max_minutes",
            "booking_horizon_days",
            "protected",
            "default_strategy",
            "default_strategy_options",
            "traffic_hook",
            "traffic_weights",
            "live_slot",
            "idle_weight",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["live_slot", "idle_weight", "created_at", "updated_at"]
        # Uniqueness is the service's to decide (409, not 400).
        extra_kwargs = {"slug": {"validators": []}}


class EnvironmentUpdateSerializer(EnvironmentSerializer):
    """PATCH: every field optional; the slug is the environment's address and does not change."""

    class Meta(EnvironmentSerializer.Meta):
        read_only_fields = ["slug", "live_slot", "idle_weight", "created_at", "updated_at"]


class TargetSerializer(serializers.ModelSerializer):
    slot = serializers.ChoiceField(choices=Slot.choices, default=Slot.NONE)
    labels = serializers.JSONField(required=False, **LABELS)
    attributes = serializers.JSONField(
        required=False,
        validators=[_django_validator(validate_attributes)],
        help_text="Strings, numbers or booleans by identifier; templates read them as target.attributes.KEY.",
    )

    class Meta:
        model = Target
        fields = [
            "id",
            "name",
            "address",
            "slot",
            "labels",
            "health_check_url",
            "path",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # (environment, name) uniqueness: the service answers 409


class VariableSerializer(serializers.ModelSerializer):
    """A variable as read: a secret's value is null, never sent."""

    value = serializers.SerializerMethodField(help_text="The value; null for secrets.")
    target = serializers.SlugRelatedField(slug_field="name", read_only=True, help_text="Target it overrides, or null.")

    class Meta:
        model = Variable
        fields = ["id", "name", "value", "secret", "target", "created_at", "updated_at"]
        read_only_fields = fields

    def get_value(self, variable: Variable) -> str | None:
        return None if variable.secret else variable.value


class VariableCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="Letters, digits and _; templates read it as var.NAME.")
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=65536)
    secret = serializers.BooleanField(default=False, help_text="Encrypted at rest and never returned.")
    target = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Target.objects.none(),
        required=False,
        allow_null=True,
        help_text="Name of a target of this environment whose value this overrides.",
    )

    def __init__(self, *args, environment: Environment | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if environment is not None:
            self.fields["target"].queryset = environment.targets.all()


class VariableUpdateSerializer(serializers.Serializer):
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=65536, required=False)
    secret = serializers.BooleanField(required=False)


class StageSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    automatic = serializers.BooleanField(default=False, help_text="Promote into this stage without a person.")
    environments = serializers.SlugRelatedField(slug_field="slug", queryset=Environment.objects.all(), many=True)


class LifecycleSerializer(serializers.ModelSerializer):
    stages = StageSerializer(many=True, help_text="In promotion order.")

    class Meta:
        model = Lifecycle
        fields = ["slug", "name", "description", "stages", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"slug": {"validators": []}}


class LifecycleUpdateSerializer(LifecycleSerializer):
    class Meta(LifecycleSerializer.Meta):
        read_only_fields = ["slug", "live_slot", "idle_weight", "created_at", "updated_at"]
