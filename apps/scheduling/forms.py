"""Forms of the calendar page. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms

from apps.core.forms import BootstrapForm


class BookingForm(BootstrapForm):
    environment = forms.ModelChoiceField(queryset=None, to_field_name="slug", empty_label=None)
    title = forms.CharField(max_length=200, help_text="What you will deploy, e.g. payments-api 1.5.0.")
    starts_at = forms.DateTimeField(
        label="Starts", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    ends_at = forms.DateTimeField(
        label="Ends", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    tz = forms.CharField(
        required=False,
        widget=forms.HiddenInput,
        help_text="The time zone the times are in (the browser's); UTC if empty.",
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, environments, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments

    def clean(self) -> dict:
        data = super().clean()
        try:
            zone = ZoneInfo(data.pop("tz", "") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        for name in ("starts_at", "ends_at"):  # typed as wall-clock times in the person's time zone
            if data.get(name):
                data[name] = data[name].replace(tzinfo=zone).astimezone(UTC)
        return data
