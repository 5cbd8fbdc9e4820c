from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.history import history
from apps.core.models import TimestampedModel


class Strategy(models.TextChoices):
    """How targets are split into phases (apps.deployments.engine.strategies)."""

    ALL_AT_ONCE = "all_at_once", "All at once"
    ROLLING = "rolling", "Rolling"
    BLUE_GREEN = "blue_green", "Blue/green"
    ROLLING_BLUE_GREEN = "rolling_blue_green", "Rolling blue/green"
    CANARY = "canary", "Canary"


class DeploymentStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REJECTED = "rejected", "Rejected"


# Deployments that hold their environment: at most one per environment (a unique partial index).
ACTIVE_STATUSES = (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED)
FINAL_STATUSES = (
    DeploymentStatus.SUCCEEDED,
    DeploymentStatus.FAILED,
    DeploymentStatus.CANCELLED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.REJECTED,
)


class DeploymentTemplate(TimestampedModel):
    """How an application is deployed: an ordered list of steps. Every change of the steps makes a new
    TemplateVersion; deployments record the version their plan was made from.

    Templates hold no environment-specific values: those come from variables (`{{ var.NAME }}`).
    """

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1, editable=False, help_text="The latest version's number.")

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One immutable version of a template's steps: [{"name", "kind", "params"}, ...]."""

    template = models.ForeignKey(DeploymentTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    history = history()

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_number")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class Deployment(TimestampedModel):
    """A release going to an environment along an immutable plan.

    The status is the state machine people see (services.TRANSITIONS). The engine's
    bookkeeping (cursor, lease, next_run_at) is written with queryset updates, so history
    rows record status changes and decisions, not every unit of work.
    """

    release = models.ForeignKey("releases.Release", on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey("environments.Environment", on_delete=models.PROTECT, related_name="deployments")
    application = models.ForeignKey("catalog.Application", on_delete=models.PROTECT, related_name="deployments")
    template_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="deployments")
    strategy = models.CharField(max_length=32, choices=Strategy)
    strategy_options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=DeploymentStatus, default=DeploymentStatus.QUEUED)
    status_reason = models.TextField(blank=True, help_text="Why it paused, failed or was cancelled.")
    plan = models.JSONField(editable=False)
    plan_digest = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the plan's canonical JSON.")
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks", editable=False
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    freeze_override = models.TextField(blank=True, help_text="Why it may start during a freeze, and who said so.")
    change_ticket = models.CharField(max_length=200, blank=True, help_text="The change ticket it was requested under.")
    # What the policies said when it was requested, and again when it was about to start (apps.policies).
    policy_results = models.JSONField(default=list, blank=True, editable=False)

    # Engine state: the unit of work to run next ((mode, phase, step)), when, and who holds it.
    mode = models.CharField(max_length=8, default="deploy", editable=False)  # "deploy" or "rollback"
    phase = models.PositiveIntegerField(default=0, editable=False)
    step = models.PositiveIntegerField(default=0, editable=False)
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_owner = models.CharField(max_length=100, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    unit_attempts = models.PositiveSmallIntegerField(default=0, editable=False)

    # The plan never changes: one copy on the row is enough.
    history = history(
        excluded_fields=["plan", "policy_results", "lease_owner", "lease_expires_at", "next_run_at", "unit_attempts"]
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(status__in=["running", "paused"]),
                name="one_active_deployment_per_environment",
                violation_error_message="Another deployment is running in this environment.",
            )
        ]
        indexes = [
            models.Index(fields=["environment", "-created_at"], name="deployment_env_latest"),
            models.Index(fields=["status", "-created_at"], name="deployment_status_latest"),
            models.Index(fields=["release", "-created_at"], name="deployment_release_latest"),
            models.Index(fields=["environment", "application", "status", "-finished_at"], name="deployment_app_env"),
            models.Index(fields=["application", "environment", "-id"], name="deployment_cell_latest"),
            models.Index(fields=["status", "next_run_at"], name="deployment_due"),
            models.Index(fields=["status", "lease_expires_at"], name="deployment_lease"),
            models.Index(fields=["environment", "status", "queued_at"], name="deployment_queue"),
        ]

    def __str__(self) -> str:
        return f"Deployment #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class StepRunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    PAUSED = "paused", "Waiting for a person"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    INTERRUPTED = "interrupted", "Interrupted"  # its worker died while it ran


class StepRun(models.Model):
    """One step of a plan on one target (or once for a batch), deploying or rolling back.

    An execution record written by the engine only; its changes are summarised in the
    deployment's audit events, so it keeps no history table of its own (each log flush would
    add a row). `attempt` counts runs: a step re-run after a lost worker or a retry.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="step_runs")
    action = models.CharField(max_length=8, default="deploy")  # "deploy" or "rollback"
    phase = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    target = models.ForeignKey(
        "environments.Target", null=True, blank=True, on_delete=models.SET_NULL, related_name="step_runs"
    )
    target_name = models.CharField(max_length=100, blank=True, help_text="Empty for steps run once per batch.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=50)
    status = models.CharField(max_length=12, choices=StepRunStatus, default=StepRunStatus.PENDING)
    attempt = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    log = models.TextField(blank=True)
    state = models.JSONField(default=dict, blank=True)
    # Webhook deliveries for a waiting step, oldest first (apps.gitops.services.webhook_receive). Only that
    # service writes it and the engine never does, so a delivery that lands while the step runs is kept.
    signals = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["deployment", "action", "phase", "step", "target_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "action", "phase", "step", "target_name"], name="step_run_once_per_target"
            )
        ]

    def __str__(self) -> str:
        where = f" on {self.target_name}" if self.target_name else ""
        return f"{self.name}{where} ({self.status})"
