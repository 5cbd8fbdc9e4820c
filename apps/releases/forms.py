"""Forms of the release pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.urls import reverse

from apps.core.forms import BootstrapForm, JSONObjectField
from apps.deployments.models import DeploymentTemplate, Strategy

from .selectors import artifact_choices
from .services import NOTES_MAX_LENGTH


def _artifact_label(artifact) -> str:
    branch = f" · {artifact.branch}" if artifact.branch else ""
    return f"{artifact.version}{branch} · {artifact.registered_at:%Y-%m-%d}"


class ReleaseForm(BootstrapForm):
    """A new release: an application the user may register on, its primary artifact, other artifacts, notes.

    The artifact choices are the chosen application's newest builds; choosing another application reloads
    them (htmx). The primary artifact comes first in the release; the others follow in version order.
    """

    application = forms.ChoiceField(help_text="Applications on which you hold the register permission.")
    primary_artifact = forms.TypedChoiceField(
        coerce=int, label="Primary artifact", help_text="Deployment templates read it as artifact.*."
    )
    artifacts = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        label="Other artifacts",
        help_text="Hold Ctrl or ⌘ to choose several. Newest 50 versions of the application.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    version = forms.CharField(
        max_length=128, required=False, help_text="Leave empty to use the primary artifact's version."
    )
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=NOTES_MAX_LENGTH,
        help_text="What changes, for the people who approve and deploy it.",
    )

    def __init__(self, *args, applications: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.applications = {app.slug: app for app in applications}
        self.fields["application"].choices = [
            ("", "Choose an application…"),
            *[(slug, f"{app.name} ({slug})") for slug, app in self.applications.items()],
        ]
        # Choosing another application reloads the artifact fields only (releases.views.release_create).
        self.fields["application"].widget.attrs.update(
            {"hx-get": reverse("releases:create"), "hx-target": "#artifact-fields", "hx-swap": "outerHTML"}
        )
        chosen = self.chosen_application()
        choices = [(a.pk, _artifact_label(a)) for a in artifact_choices(chosen)] if chosen else []
        self.fields["primary_artifact"].choices = [("", "Choose an artifact…" if choices else "No artifacts"), *choices]
        self.fields["artifacts"].choices = choices

    def chosen_application(self):
        """The application named by the submitted data or the initial value, if the user may register on it."""
        slug = self.data.get("application") if self.is_bound else self.initial.get("application")
        return self.applications.get(slug or "")

    def service_arguments(self) -> dict:
        """The cleaned data as release_create's keyword arguments."""
        data = self.cleaned_data
        extra = [pk for pk in data["artifacts"] if pk != data["primary_artifact"]]
        return {
            "application": self.applications[data["application"]],
            "artifacts": [data["primary_artifact"], *extra],
            "version": data["version"],
            "notes": data["notes"],
        }


class ReleaseNotesForm(BootstrapForm):
    """A release's notes, which can change until a deployment uses the release."""

    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=NOTES_MAX_LENGTH,
        help_text="What changes, for the people who approve and deploy it.",
    )


class DeployForm(BootstrapForm):
    """Deploy a release: where, how (strategy and its options), along which template. Parsing only; the plan
    is resolved and checked by apps.deployments.services."""

    environment = forms.ModelChoiceField(queryset=None, to_field_name="slug", empty_label=None)
    strategy = forms.ChoiceField(
        choices=[("", "The environment's default"), *Strategy.choices], required=False, initial=""
    )
    batch_size = forms.CharField(
        max_length=8,
        required=False,
        help_text="Rolling (blue/green): targets per batch, or a percentage (25%).",
    )
    pause_seconds = forms.IntegerField(
        min_value=0, max_value=86400, required=False, help_text="Rolling: seconds between batches."
    )
    health_gate = forms.BooleanField(required=False, initial=True, help_text="Check each target's health URL.")
    rollback_on_failure = forms.ChoiceField(
        choices=[("", "The strategy's default"), ("yes", "Yes"), ("no", "No")],
        required=False,
        help_text="Undo what was changed when a step or a gate fails.",
    )
    options = JSONObjectField(
        label="More options",
        help_text='JSON, e.g. {"stages": [{"weight": 10, "pause": "5m"}, {"weight": 100}]} or '
        '{"keep_old_slot_for": "10m"}. See the strategies in the API documentation.',
    )
    template = forms.ModelChoiceField(
        queryset=DeploymentTemplate.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="(the application's or environment's default)",
    )
    change_ticket = forms.CharField(
        max_length=200, required=False, help_text="The change ticket reference, where a policy asks for one."
    )
    override_rules = forms.CharField(
        max_length=500,
        required=False,
        label="Override policy rules",
        help_text="Failed rules to set aside, as a refusal names them: policy-set/kind, comma-separated "
        "(needs manage on the environment).",
    )
    override_reason = forms.CharField(
        max_length=2000,
        required=False,
        label="Justification",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why (recorded, sent to the environment's owners); also overrides the lifecycle.",
    )

    def __init__(self, *args, environments: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments

    def service_kwargs(self) -> dict:
        """deployment_create's keyword arguments from the cleaned data. Options left out come from the
        environment's default options when its default strategy is used."""
        data = self.cleaned_data
        strategy = data["strategy"] or None
        options = {"health_gate": data["health_gate"]}
        if data["rollback_on_failure"]:
            options["rollback_on_failure"] = data["rollback_on_failure"] == "yes"
        size = (data.get("batch_size") or "").strip()
        if size and strategy in (Strategy.ROLLING, Strategy.ROLLING_BLUE_GREEN):
            options["batch_size"] = int(size) if size.isdigit() else size
        if data.get("pause_seconds") and strategy == Strategy.ROLLING:
            options["pause_seconds"] = data["pause_seconds"]
        return {
            "environment": data["environment"],
            "strategy": strategy,
            "strategy_options": {**options, **data["options"]},
            "template": data.get("template"),
        }

    def request_kwargs(self) -> dict:
        """What deployment_create takes besides the plan's inputs: the change ticket and overrides."""
        data = self.cleaned_data
        return {
            "change_ticket": data["change_ticket"].strip(),
            "override_rules": [rule.strip() for rule in data["override_rules"].split(",") if rule.strip()],
            "override_reason": data["override_reason"].strip(),
        }
