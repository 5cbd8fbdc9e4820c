"""Forms of the deployment pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.core.forms import BootstrapForm

from .models import DeploymentTemplate, TemplateVersion

MAX_STEPS_TEXT = 200_000  # characters of JSON; the service caps the number of steps


class StepsField(forms.CharField):
    """A template's steps typed as JSON: a list of {"name", "kind", "params"}.

    Only the JSON syntax is checked here; what the steps mean (known kinds, parameters valid
    against each kind's schema, template syntax) is the service's job (plans.validate_steps).
    """

    widget = forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "font-monospace rh-steps-input"})

    def __init__(self, **kwargs) -> None:
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | dict):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value) -> Any:
        text = super().to_python(value)
        if not text.strip():
            return None if self.required else []
        if len(text) > MAX_STEPS_TEXT:
            raise ValidationError(f"At most {MAX_STEPS_TEXT:,} characters of JSON.")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None

    def validate(self, value) -> None:
        if value is None:
            raise ValidationError(self.error_messages["required"], code="required")


class DeploymentTemplateForm(BootstrapForm):
    """Create (with a slug) or edit a template; new steps make a new version."""

    slug = forms.SlugField(max_length=50, help_text="Used in URLs and the API; it cannot change later.")
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    steps = StepsField(
        help_text='A JSON list of steps, run in order: [{"name": "Install", "kind": "release_dir", "params": {}}]. '
        "Parameters may use {{ var.NAME }}, {{ target.path }}, {{ artifact.version }}, {{ release.version }} "
        "and {{ environment.slug }}."
    )

    def __init__(
        self, *args, instance: DeploymentTemplate | None = None, latest: TemplateVersion | None = None, **kwargs
    ) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "description": instance.description,
                    "steps": latest.steps if latest is not None else [],
                },
            )
        super().__init__(*args, **kwargs)
        if instance is not None:
            del self.fields["slug"]
            self.fields["steps"].help_text = (
                "Changing the steps makes a new version; deployments keep the version they were planned with. "
                + self.fields["steps"].help_text
            )


class ResumeForm(forms.Form):
    """Resume a paused deployment, saying what was checked (kept in the step's message and the audit trail)."""

    comment = forms.CharField(max_length=1000, required=False, strip=True)
