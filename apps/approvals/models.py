from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.history import history
from apps.core.models import TimestampedModel


class ApprovalPolicy(TimestampedModel):
    """What a deployment to an environment needs before it may run: N distinct approvers from the
    eligible teams (people holding `approve` on the environment), within an optional time."""

    environment = models.OneToOneField(
        "environments.Environment", on_delete=models.CASCADE, related_name="approval_policy"
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    eligible_teams = models.ManyToManyField(
        "accounts.Team",
        blank=True,
        related_name="+",
        help_text="Only members of these teams may approve (they need `approve` on the environment too). "
        "Empty: anyone with `approve`.",
    )
    expires_after = models.DurationField(
        null=True, blank=True, help_text="An unanswered request expires after this long and the deployment is rejected."
    )
    rejection_rejects = models.BooleanField(default=True, help_text="One rejection rejects the deployment.")

    history = history(m2m_fields=[eligible_teams])

    class Meta:
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"Approval policy of {self.environment}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalRequest(TimestampedModel):
    """A deployment waiting for people, bound to its plan digest and environment: approvals given here
    never count for another plan."""

    deployment = models.OneToOneField(
        "deployments.Deployment", on_delete=models.CASCADE, related_name="approval_request"
    )
    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    plan_digest = models.CharField(max_length=64)
    required_approvals = models.PositiveSmallIntegerField()
    rejection_rejects = models.BooleanField(default=True)
    eligible_team_ids = models.JSONField(default=list, blank=True, help_text="The policy's teams when requested.")
    status = models.CharField(max_length=12, choices=RequestStatus, default=RequestStatus.PENDING)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"], name="approval_request_due"),
            models.Index(fields=["environment", "status"], name="approval_request_env"),
        ]

    def __str__(self) -> str:
        return f"Approval of deployment #{self.deployment_id}"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class Decision(models.Model):
    """One person's verdict on one request. One per person: approving twice counts once."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=8, choices=Verdict)
    comment = models.TextField(blank=True)
    plan_digest = models.CharField(max_length=64, help_text="The plan the person saw and decided on.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "user"], name="one_decision_per_person")]
        indexes = [models.Index(fields=["user", "-created_at"], name="decision_by_user")]

    def __str__(self) -> str:
        return f"{self.user} {self.verdict}d #{self.request.deployment_id}"
