"""Forms of the approval pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms

from apps.accounts.models import Team
from apps.core.forms import BootstrapForm

from .models import ApprovalPolicy
from .services import MAX_APPROVALS


class DecisionForm(forms.Form):
    """An approval or a rejection from the deployment page: a comment, and the plan digest the person saw
    (the service refuses the decision when the deployment's plan is not that one, and checks the comment)."""

    comment = forms.CharField(required=False, strip=True)
    plan_digest = forms.CharField(required=False)

    def values(self) -> dict:
        """The service's keyword arguments (call after is_valid())."""
        return {"comment": self.cleaned_data["comment"], "plan_digest": self.cleaned_data["plan_digest"] or None}


class TeamsField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            queryset=Team.objects.order_by("name"), to_field_name="slug", widget=forms.CheckboxSelectMultiple, **kwargs
        )

    def label_from_instance(self, obj: Team) -> str:
        return obj.name


class ApprovalPolicyForm(BootstrapForm):
    """Set or replace an environment's approval policy."""

    required_approvals = forms.IntegerField(
        min_value=1,
        max_value=MAX_APPROVALS,
        initial=1,
        label="Approvals needed",
        help_text=f"Distinct people, from 1 to {MAX_APPROVALS}. Whoever requested a deployment or created its "
        "release never counts.",
    )
    eligible_teams = TeamsField(
        required=False,
        label="Who may approve",
        help_text="Only members of these teams count (they need the approve permission too). "
        "None ticked: anyone holding approve on the environment.",
    )
    expires_after = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=6,
        decimal_places=2,
        label="Expires after (hours)",
        help_text="An unanswered request expires, and its deployment is rejected. Blank: never. At most 720 (30 days).",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "never"}),
    )
    rejection_rejects = forms.BooleanField(required=False, initial=True, label="One rejection rejects the deployment")

    def __init__(self, *args, policy: ApprovalPolicy | None = None, **kwargs) -> None:
        if policy is not None:
            hours = None
            if policy.expires_after:
                hours = round(policy.expires_after.total_seconds() / 3600, 2)
                hours = int(hours) if hours == int(hours) else hours
            kwargs.setdefault(
                "initial",
                {
                    "required_approvals": policy.required_approvals,
                    "eligible_teams": [team.slug for team in policy.eligible_teams.all()],
                    "expires_after": hours,
                    "rejection_rejects": policy.rejection_rejects,
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["eligible_teams"].widget.attrs["class"] = "form-check-input"

    def service_kwargs(self) -> dict:
        """policy_set()'s keyword arguments: teams as a list, hours as a timedelta (None: never)."""
        data = dict(self.cleaned_data)
        hours = data.pop("expires_after")
        return {
            **data,
            "eligible_teams": list(data["eligible_teams"]),
            "expires_after": timedelta(hours=float(hours)) if hours is not None else None,
        }
