from rest_framework import serializers

from apps.environments.choices import Tier
from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to
from apps.releases.models import Release
from apps.releases.selectors import releases_visible_to

from ..models import PolicySet, Rule
from ..selectors import policy_sets_visible_to


class _VisibleToCaller:
    """A related field that finds only what the caller (context["request"].user) may view: an invisible object and
    an unknown one get the same answer."""

    visible_to = None

    def get_queryset(self):
        return type(self).visible_to(self.context["request"].user)


class VisibleEnvironment(_VisibleToCaller, serializers.SlugRelatedField):
    visible_to = staticmethod(environments_visible_to)

    def __init__(self, **kwargs) -> None:
        super().__init__(slug_field="slug", queryset=Environment.objects.none(), **kwargs)


class VisibleRelease(_VisibleToCaller, serializers.PrimaryKeyRelatedField):
    visible_to = staticmethod(releases_visible_to)

    def __init__(self, **kwargs) -> None:
        super().__init__(queryset=Release.objects.none(), **kwargs)


class VisiblePolicySet(_VisibleToCaller, serializers.SlugRelatedField):
    visible_to = staticmethod(policy_sets_visible_to)

    def __init__(self, **kwargs) -> None:
        super().__init__(slug_field="slug", queryset=PolicySet.objects.none(), **kwargs)


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
    environments = VisibleEnvironment(many=True, required=False, default=list)
    tiers = serializers.ListField(child=serializers.ChoiceField(choices=Tier.choices), required=False, default=list)
    all_environments = serializers.BooleanField(required=False, default=False)
    rules = RuleInputSerializer(many=True, help_text="Each `{kind, params, overridable?, two_person?}`.")


class PolicySetUpdateSerializer(PolicySetCreateSerializer):
    """Any of the fields (not the slug); `rules`, when given, replace the set's rules, rule by rule in order."""

    slug = None
    active = serializers.BooleanField(required=False, help_text="An inactive set checks nothing.")


class EvaluateSerializer(serializers.Serializer):
    """A dry run: what the policies would say of deploying `release` to `environment` (now, or `at`)."""

    release = VisibleRelease()
    environment = VisibleEnvironment()
    strategy = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    change_ticket = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    policy_set = VisiblePolicySet(
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
    overridden = serializers.BooleanField(help_text="Failed, and overridden for this deployment.")
    overridable = serializers.BooleanField()
    two_person = serializers.BooleanField()


class EvaluationSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    results = ResultSerializer(many=True)
