"""Forms of the calendar page. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from datetime import UTC

from django import forms

from apps.core.forms import BootstrapForm


class BookingForm(BootstrapForm):
    environment = forms.ModelChoiceField(queryset=None, to_field_name="slug", empty_label=None)
    title = forms.CharField(max_length=200, help_text="What you will deploy, e.g. payments-api 1.5.0.")
    starts_at = forms.DateTimeField(
        label="Starts (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    ends_at = forms.DateTimeField(
        label="Ends (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, environments, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments

    def clean(self) -> dict:
        data = super().clean()
        for name in ("starts_at", "ends_at"):  # the page says UTC: read the times as UTC
            if data.get(name):
                data[name] = data[name].replace(tzinfo=UTC)
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)
