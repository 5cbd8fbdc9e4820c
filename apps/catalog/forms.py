"""Forms of the application pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from django import forms

from apps.core.forms import BootstrapForm, TeamChoiceField
from apps.deployments.models import DeploymentTemplate

from .models import Application


class ApplicationForm(BootstrapForm):
    """Create (with a slug) or edit an application."""

    slug = forms.SlugField(max_length=50, help_text="Used by CI when it registers artifacts; it cannot change later.")
    name = forms.CharField(max_length=100)
    owner_team = TeamChoiceField(help_text="Gets view, register and manage on a new application.")
    repository_url = forms.URLField(max_length=500, required=False, label="Repository URL", assume_scheme="https")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    default_template = forms.ModelChoiceField(
        queryset=DeploymentTemplate.objects.order_by("name"),
        required=False,
        empty_label="(none)",
        help_text="Used when a deployment names no template.",
    )

    def __init__(self, *args, instance: Application | None = None, **kwargs) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "owner_team": instance.owner_team,
                    "repository_url": instance.repository_url,
                    "description": instance.description,
                    "default_template": instance.default_template,
                },
            )
        super().__init__(*args, **kwargs)
        if instance is not None:
            del self.fields["slug"]
            self.fields["owner_team"].help_text = "The team that owns it."
