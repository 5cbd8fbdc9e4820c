"""Form pieces shared by the pages of every app."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from apps.accounts.models import Team


class BootstrapForm(forms.Form):
    """Gives every widget its Bootstrap class, and `is-invalid` to fields with errors (also domain errors
    added later with form_add_domain_error)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # not the bound fields: they would cache labels set later
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def add_error(self, field, error) -> None:
        super().add_error(field, error)
        for name in self._errors or {}:
            if name in self.fields and "is-invalid" not in self.fields[name].widget.attrs["class"]:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class TeamChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("empty_label", "Choose a team…")
        super().__init__(queryset=Team.objects.order_by("name"), to_field_name="slug", **kwargs)

    def label_from_instance(self, obj: Team) -> str:
        return obj.name


class AccessForm(forms.Form):
    """One grant or revocation: a team and an action."""

    team = TeamChoiceField()
    action = forms.ChoiceField(choices=[])

    def __init__(self, *args, actions: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(action, action) for action in actions]


class JSONObjectField(forms.CharField):
    """A JSON object typed as JSON text; empty means {}."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "font-monospace"})

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)

    def prepare_value(self, value):
        return json.dumps(value, indent=2) if isinstance(value, dict) and value else ("" if value == {} else value)

    def to_python(self, value) -> dict:
        if not value:
            return {}
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}.") from exc
        if not isinstance(parsed, dict):
            raise ValidationError("Write a JSON object: {...}.")
        return parsed
