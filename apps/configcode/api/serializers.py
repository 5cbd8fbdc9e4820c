from rest_framework import serializers

from ..services import CREATE, SKIPPED, UNCHANGED, UPDATE


class ImportSerializer(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=False, help_text="The YAML document (as exported).")
    dry_run = serializers.BooleanField(default=True, help_text="Only report the changes (the default).")


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="environment, target, variable, template, lifecycle, approval_policy...")
    key = serializers.CharField(help_text="Its natural key: a slug, `environment/target`, `environment/NAME`...")
    path = serializers.CharField(help_text="Where it is in the file, e.g. `environments[0].targets[1]`.")
    action = serializers.ChoiceField(choices=[CREATE, UPDATE, UNCHANGED, SKIPPED])
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True), min_length=2, max_length=2),
        help_text="Changed fields: [old, new] (old is null on create); secrets as `(hidden)`.",
    )
    note = serializers.CharField(allow_blank=True)


class PlanSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changes = ChangeSerializer(many=True)
    summary = serializers.DictField(child=serializers.IntegerField(), help_text="How many of each action.")


class ConfigDocumentSerializer(serializers.Serializer):
    """The exported document's top level, for the schema (docs/configuration-as-code.md gives each entry)."""

    version = serializers.IntegerField()
    environments = serializers.ListField(
        child=serializers.DictField(), help_text="With their targets, variables and (pull mode) repository."
    )
    templates = serializers.ListField(child=serializers.DictField())
    lifecycles = serializers.ListField(child=serializers.DictField())
    approval_policies = serializers.ListField(child=serializers.DictField())
    policy_sets = serializers.ListField(child=serializers.DictField())
    freezes = serializers.ListField(child=serializers.DictField())
