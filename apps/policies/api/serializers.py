from rest_framework import serializers

from apps.environments.choices import Tier
from apps.environments.models import Environment
from apps.releases.models import Release

from ..models import PolicySet, Rule


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = ["id", "position", "kind", "params", "overridable", "two_person"]
        read_only_fields = fields


class PolicySetSerializer(serializers.ModelSerializer):
    """A policy set: where it applies (`environments`, `tiers`, `all_environments`) and its rules in order."""

    environments = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    rules = RuleSerializer(many=True, read_only=True)

    class Meta:
        model = PolicySet
        fields = [
            "slug",
            "name",
            "description",
            "environments",
            "tiers",
            "all_environments",
            "active",
            "rules",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RuleInputSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=32)
    params = serializers.DictField(required=False, default=dict)
    overridable = serializers.BooleanField(required=False, default=True)
    two_person = serializers.BooleanField(required=False, default=False)


class PolicySetCreateSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    environments = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Environment.objects.all(), required=False, default=list
    )
    tiers = serializers.ListField(child=serializers.ChoiceField(choices=Tier.choices), required=False, default=list)
    all_environments = serializers.BooleanField(required=False, default=False)
    rules = RuleInputSerializer(many=True, help_text="Each `{kind, params, overridable?, two_person?}`.")


class PolicySetUpdateSerializer(PolicySetCreateSerializer):
    """Any of the fields (not the slug); `rules`, when given, replace the set's rules, rule by rule in order."""

    slug = None
    active = serializers.BooleanField(required=False, help_text="An inactive set checks nothing.")


class EvaluateSerializer(serializers.Serializer):
    """A dry run: what the policies would say of deploying `release` to `environment` (now, or `at`)."""

    release = serializers.PrimaryKeyRelatedField(queryset=Release.objects.all())
    environment = serializers.SlugRelatedField(slug_field="slug", queryset=Environment.objects.all())
    strategy = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    change_ticket = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    policy_set = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=PolicySet.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Test this policy set only (even one not attached to the environment).",
    )


class ResultSerializer(serializers.Serializer):
    policy_set = serializers.SlugField()
    rule = serializers.IntegerField()
    kind = serializers.CharField()
    passed = serializers.BooleanField()
    message = serializers.CharField()
    inputs = serializers.DictField()
    waitable = serializers.BooleanField(help_text="A failure that time may cure: the deployment would wait.")
    overridable = serializers.BooleanField()
    two_person = serializers.BooleanField()


class EvaluationSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    results = ResultSerializer(many=True)
