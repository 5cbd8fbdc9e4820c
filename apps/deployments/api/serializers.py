from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.approvals.models import ApprovalRequest, Decision
from apps.gitops.cards import PHASES, gitops_cards
from apps.policies.models import PolicyOverride

from ..models import Deployment, DeploymentTemplate, StepRun, Strategy


class StepRunSerializer(serializers.ModelSerializer):
    target = serializers.CharField(source="target_name", help_text="Empty for steps run once per batch.")

    class Meta:
        model = StepRun
        fields = [
            "id",
            "action",
            "phase",
            "step",
            "target",
            "name",
            "kind",
            "status",
            "attempt",
            "started_at",
            "finished_at",
            "exit_code",
            "message",
        ]
        read_only_fields = fields


class StepLogSerializer(StepRunSerializer):
    class Meta(StepRunSerializer.Meta):
        fields = [*StepRunSerializer.Meta.fields, "log"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    """A deployment as lists show it (without its plan)."""

    release = serializers.PrimaryKeyRelatedField(read_only=True)
    version = serializers.CharField(source="release.version", read_only=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    template = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "release",
            "version",
            "application",
            "environment",
            "status",
            "status_reason",
            "strategy",
            "strategy_options",
            "template",
            "plan_digest",
            "created_by",
            "created_at",
            "scheduled_for",
            "started_at",
            "finished_at",
            "rollback_of",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "properties": {"slug": {"type": "string"}, "version": {"type": "integer"}}})
    def get_template(self, deployment) -> dict:
        return {"slug": deployment.template_version.template.slug, "version": deployment.template_version.number}


class DecisionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Decision
        fields = ["user", "verdict", "comment", "plan_digest", "created_at"]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    """The deployment's approval request: bound to its plan digest; who decided what, and when."""

    decisions = DecisionSerializer(many=True, read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = ["status", "required_approvals", "plan_digest", "expires_at", "decided_at", "decisions"]
        read_only_fields = fields


class DecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    plan_digest = serializers.RegexField(
        r"^[0-9a-f]{64}$", required=False, help_text="The digest of the plan you reviewed; 409 if it is not this one."
    )


class PolicyOverrideSerializer(serializers.ModelSerializer):
    """Failed policy rules someone who manages the environment let pass for this deployment, and why."""

    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    confirmed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    effective = serializers.BooleanField(read_only=True, help_text="False while a two-person override waits.")

    class Meta:
        model = PolicyOverride
        fields = [
            "id",
            "rules",
            "justification",
            "requested_by",
            "requested_at",
            "needs_confirmation",
            "confirmed_by",
            "confirmed_at",
            "effective",
        ]
        read_only_fields = fields


class PolicyOverrideInputSerializer(serializers.Serializer):
    rules = serializers.ListField(
        child=serializers.CharField(max_length=100), help_text="The rules to override, as `policy-set/kind`."
    )
    justification = serializers.CharField(max_length=2000, help_text="Why (recorded; sent to the owners).")


class ConfirmOverrideSerializer(serializers.Serializer):
    override = serializers.IntegerField(help_text="The id of the override waiting for a second person.")


class GitOpsStatusSerializer(serializers.Serializer):
    """Where a pull-mode deployment's gitops_commit step commits, and where it stands."""

    name = serializers.CharField(help_text="The step's name.")
    url = serializers.CharField(help_text="The environment repository.")
    branch = serializers.CharField()
    path = serializers.CharField()
    phase = serializers.ChoiceField(choices=list(PHASES), help_text="awaiting_merge and awaiting_sync while running.")
    commit = serializers.CharField(help_text="The commit made; empty before it or when nothing changed.")
    revision = serializers.CharField(help_text="The merge commit, when a pull request was merged as another commit.")
    pull_request = serializers.IntegerField(allow_null=True)
    pull_request_url = serializers.CharField()


class DeploymentDetailSerializer(DeploymentSerializer):
    """One deployment with its plan (secrets as references) and every step run."""

    plan = serializers.JSONField(read_only=True)
    approvals = serializers.SerializerMethodField()
    steps = StepRunSerializer(many=True, read_only=True, source="step_runs")

    policy_results = serializers.JSONField(
        read_only=True, help_text="What each policy rule said: at the request, then when it was about to start."
    )

    policy_overrides = PolicyOverrideSerializer(many=True, read_only=True)
    gitops = serializers.SerializerMethodField()

    class Meta(DeploymentSerializer.Meta):
        fields = [
            *DeploymentSerializer.Meta.fields,
            "change_ticket",
            "plan",
            "policy_results",
            "policy_overrides",
            "approvals",
            "steps",
            "gitops",
        ]
        read_only_fields = fields

    @extend_schema_field(GitOpsStatusSerializer(many=True))
    def get_gitops(self, deployment) -> list[dict]:
        """Pull mode ([] otherwise), from the plan and the step runs already loaded."""
        return [
            {
                "name": card["name"],
                "url": card["repository"].get("url", ""),
                "branch": card["repository"].get("branch", ""),
                "path": card["repository"].get("path", ""),
                "phase": card["phase"],
                "commit": card["commit"],
                "revision": card["revision"],
                "pull_request": card["pull_request"],
                "pull_request_url": card["pull_request_url"],
            }
            for card in gitops_cards(deployment.plan, list(deployment.step_runs.all()))
        ]

    @extend_schema_field(ApprovalSerializer(allow_null=True))
    def get_approvals(self, deployment) -> dict | None:
        request = getattr(deployment, "approval_request", None)
        return ApprovalSerializer(request).data if request else None


class DeployRequestSerializer(serializers.Serializer):
    """POST /releases/{id}/deploy/ (API.md "Releases and deployments")."""

    environment = serializers.SlugField(max_length=50, help_text="Slug of an environment you may deploy to.")
    strategy = serializers.ChoiceField(choices=Strategy.choices, required=False)
    strategy_options = serializers.DictField(required=False, help_text='e.g. {"batch_size": "25%"}')
    template = serializers.SlugRelatedField(
        slug_field="slug", queryset=DeploymentTemplate.objects.all(), required=False
    )
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Deploy although the lifecycle or a block forbids it: why (needs `manage` on the environment).",
    )
    change_ticket = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="The change ticket reference, for policies."
    )
    override_rules = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Policy rules (`policy-set/kind`, as a 422 names them) to override; `override_reason` says why "
        "(needs `manage` on the environment; two-person rules wait for a second person to confirm).",
    )


class PromoteSerializer(serializers.Serializer):
    override_reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class UnblockSerializer(serializers.Serializer):
    environment = serializers.SlugField(max_length=50)
    reason = serializers.CharField(max_length=2000)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TemplateStepSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=50)
    params = serializers.DictField(required=False)


class DeploymentTemplateSerializer(serializers.ModelSerializer):
    steps = serializers.SerializerMethodField()

    class Meta:
        model = DeploymentTemplate
        fields = ["slug", "name", "description", "version", "steps", "created_at", "updated_at"]
        read_only_fields = ["version", "steps", "created_at", "updated_at"]

    @extend_schema_field(TemplateStepSerializer(many=True))
    def get_steps(self, template) -> list:
        versions = list(template.versions.all())  # prefetched, newest first
        return versions[0].steps if versions else []


class DeploymentTemplateWriteSerializer(serializers.ModelSerializer):
    steps = serializers.JSONField(help_text="[{name, kind, params}]: each kind's parameters per its JSON Schema.")

    class Meta:
        model = DeploymentTemplate
        fields = ["slug", "name", "description", "steps"]
        extra_kwargs = {"slug": {"validators": []}}


class DeploymentTemplateUpdateSerializer(DeploymentTemplateWriteSerializer):
    steps = serializers.JSONField(required=False)

    class Meta(DeploymentTemplateWriteSerializer.Meta):
        fields = ["name", "description", "steps"]


class StrategySerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    options = serializers.JSONField(help_text="JSON Schema (draft 2020-12) of strategy_options; defaults included.")


class JustificationSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class PreviewSerializer(serializers.Serializer):
    """GET /api/v1/releases/{id}/preview/ (documentation only: the service builds the answer)."""

    environment = serializers.CharField()
    plan_digest = serializers.CharField()
    template = serializers.JSONField()
    strategy = serializers.JSONField()
    phases = serializers.JSONField()
    targets = serializers.JSONField(help_text="[{target, current, new, changed, variables}] (secrets masked)")
    approvals = serializers.JSONField(allow_null=True)
    obstacles = serializers.ListField(child=serializers.CharField())
    policies = serializers.JSONField(help_text="[{policy_set, kind, passed, message, waitable, ...}] of each rule")
    freeze = serializers.CharField(allow_null=True)
    requires_booking = serializers.BooleanField()
