"""Forms of the environment pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.core.forms import BootstrapForm, JSONObjectField, TeamChoiceField
from apps.deployments.models import DeploymentTemplate, Strategy

from .choices import Slot, Tier
from .models import Environment, Target


class KeyValueField(forms.CharField):
    """A JSON object typed as `key=value` lines (labels, attributes).

    With `typed=True`, values that read as JSON numbers or booleans become numbers or
    booleans (`port=8080`); quote them to keep a string (`build="42"`).
    """

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "font-monospace"})

    def __init__(self, *, typed: bool = False, **kwargs) -> None:
        self.typed = typed
        kwargs.setdefault("required", False)
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{key}={self._show(item)}" for key, item in value.items())
        return value

    def _show(self, item) -> str:
        if not self.typed:
            return str(item)
        if isinstance(item, str):
            try:
                json.loads(item)
            except ValueError:
                return item
            return json.dumps(item)  # "8080" stays a string when read back
        return json.dumps(item)

    def _read(self, text: str) -> Any:
        if not self.typed:
            return text
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, str | int | float | bool) else text

    def to_python(self, value) -> dict:
        result: dict[str, Any] = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, item = line.partition("=")
            if not sep or not key.strip():
                raise ValidationError(f"Line {number}: write key=value.")
            result[key.strip()] = self._read(item.strip())
        return result


class EnvironmentForm(BootstrapForm):
    """Create (with a slug) or edit an environment."""

    slug = forms.SlugField(max_length=50, help_text="Used in URLs and the API; it cannot change later.")
    name = forms.CharField(max_length=100)
    tier = forms.ChoiceField(choices=Tier.choices, initial=Tier.DEVELOPMENT)
    owner_team = TeamChoiceField(help_text="Gets view, deploy, book and manage on a new environment.")
    timezone = forms.CharField(
        max_length=64,
        initial="UTC",
        label="Time zone",
        help_text="IANA name, e.g. Europe/Berlin. Calendar rules use it.",
    )
    labels = KeyValueField(help_text="One key=value per line, e.g. region=eu-central.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    requires_booking = forms.BooleanField(required=False, help_text="Deployments need a booked slot.")
    booking_min_minutes = forms.IntegerField(
        min_value=1, required=False, initial=15, label="Shortest booking (minutes)"
    )
    booking_max_minutes = forms.IntegerField(
        min_value=1, required=False, initial=480, label="Longest booking (minutes)"
    )
    booking_horizon_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        initial=90,
        label="Booking horizon (days)",
        help_text="How far ahead slots may be booked.",
    )
    protected = forms.BooleanField(required=False, help_text="Changes and deployments need extra care.")
    default_template = forms.ModelChoiceField(
        queryset=DeploymentTemplate.objects.order_by("name"),
        required=False,
        empty_label="(none)",
        help_text="Used when neither the deployment nor its application names a template.",
    )
    default_strategy = forms.ChoiceField(
        choices=[("", "All at once (default)"), *Strategy.choices],
        required=False,
        help_text="Used when a deployment names no strategy.",
    )
    default_strategy_options = JSONObjectField(
        label="Default strategy options",
        help_text='JSON, e.g. {"stages": [{"weight": 10, "pause": "5m"}, {"weight": 100}]}. Options are listed '
        "in the API documentation.",
    )
    traffic_hook = JSONObjectField(
        help_text='Blue/green: what moves traffic between slots, e.g. {"kind": "shell", "params": {"command": '
        '"ln -sfn /srv/{{ traffic.slot }} /srv/live"}} or {"kind": "http", "params": {...}}. Empty: none.',
    )
    traffic_weights = forms.BooleanField(
        required=False, help_text="The hook can split traffic by weight: canaries move traffic, not targets."
    )

    FIELDS = (
        "name",
        "tier",
        "owner_team",
        "timezone",
        "labels",
        "description",
        "requires_booking",
        "booking_min_minutes",
        "booking_max_minutes",
        "booking_horizon_days",
        "protected",
        "default_template",
        "default_strategy",
        "default_strategy_options",
        "traffic_hook",
        "traffic_weights",
    )

    def clean(self) -> dict:
        data = super().clean()
        for name in ("booking_min_minutes", "booking_max_minutes", "booking_horizon_days"):
            if data.get(name) is None:  # left empty: the current value (or the default) stays
                data.pop(name, None)
        return data

    def __init__(self, *args, instance: Environment | None = None, **kwargs) -> None:
        if instance is not None:
            kwargs.setdefault("initial", {name: getattr(instance, name) for name in self.FIELDS})
        super().__init__(*args, **kwargs)
        if instance is not None:
            del self.fields["slug"]
            self.fields["owner_team"].help_text = "The team that owns it."


class TargetForm(BootstrapForm):
    name = forms.CharField(max_length=100, help_text="Letters, digits, '.', '_' and '-'; unique in the environment.")
    address = forms.CharField(max_length=255, help_text="Host name, IP address or URL.")
    slot = forms.ChoiceField(choices=Slot.choices, initial=Slot.NONE, help_text="Side in blue/green deployments.")
    path = forms.CharField(max_length=500, required=False, help_text="Directory for directory deployments.")
    health_check_url = forms.URLField(max_length=500, required=False, label="Health check URL", assume_scheme="https")
    labels = KeyValueField(help_text="One key=value per line.")
    attributes = KeyValueField(
        typed=True,
        help_text="One key=value per line; templates read target.attributes.KEY. Numbers and true/false "
        'are typed: port=8080. Quote to keep text: build="42".',
    )

    FIELDS = ("name", "address", "slot", "path", "health_check_url", "labels", "attributes")

    def __init__(self, *args, instance: Target | None = None, **kwargs) -> None:
        if instance is not None:
            kwargs.setdefault("initial", {name: getattr(instance, name) for name in self.FIELDS})
        super().__init__(*args, **kwargs)


class VariableForm(BootstrapForm):
    """A new variable: environment-wide, or an override for one target."""

    name = forms.CharField(max_length=100, help_text="Letters, digits and _; templates read it as var.NAME.")
    target = forms.ModelChoiceField(
        queryset=Target.objects.none(),
        required=False,
        empty_label="Whole environment",
        help_text="Override the value for one target only.",
    )
    value = forms.CharField(
        required=False,
        strip=False,
        max_length=65536,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "font-monospace"}),
    )
    secret = forms.BooleanField(
        required=False, help_text="Encrypted at rest, masked everywhere, never shown again, not even to you."
    )

    def __init__(self, *args, environment: Environment, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = environment.targets.order_by("name")
        if self.is_bound and self.data.get("secret") in ("on", "true", "1"):
            # A form shown again after an error never sends a secret back to the browser.
            self.fields["value"].widget = forms.PasswordInput(
                render_value=False, attrs=self.fields["value"].widget.attrs
            )


class VariableEditForm(BootstrapForm):
    """Change a variable's value or secrecy. A secret's current value is never shown: leave the field
    empty to keep it."""

    value = forms.CharField(
        required=False,
        strip=False,
        max_length=65536,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "font-monospace"}),
    )
    secret = forms.BooleanField(required=False, help_text="Encrypted at rest, masked everywhere.")

    def __init__(self, *args, variable, **kwargs) -> None:
        self.variable = variable
        if not variable.secret:
            kwargs.setdefault("initial", {"value": variable.value, "secret": False})
        else:
            kwargs.setdefault("initial", {"secret": True})
        super().__init__(*args, **kwargs)
        if variable.secret:
            self.fields["value"].widget = forms.PasswordInput(
                render_value=False,
                attrs={**self.fields["value"].widget.attrs, "placeholder": "Leave empty to keep the current secret"},
            )
            self.fields["value"].label = "New value"
            self.fields["value"].help_text = "The current value stays hidden. Type a new one to replace it."
            self.fields["secret"].help_text = "Untick to make it a plain value: then type the new value above."

    def changes(self) -> dict[str, Any]:
        """What to pass to variable_update: an empty field keeps a secret's value."""
        value = self.cleaned_data["value"]
        changes: dict[str, Any] = {"secret": self.cleaned_data["secret"]}
        if not (self.variable.secret and value == ""):
            changes["value"] = value
        return changes
