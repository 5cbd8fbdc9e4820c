"""Forms of the notifications pages. They only parse input: the services validate, check permissions and save."""

from __future__ import annotations

from django import forms

from apps.core.forms import BootstrapForm

from .events import EVENT_CHOICES
from .models import Channel
from .services import APPRISE_URL_MAX_LENGTH, SECRET_MAX_LENGTH


class SubscriptionForm(BootstrapForm):
    """A new subscription of the signed-in person: events, environment (or all), channel and its target."""

    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)
    environment = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="slug",
        empty_label="Every environment I may view",
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    url = forms.URLField(
        label="Webhook URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Webhooks: ReleaseHub POSTs JSON here.",
    )
    secret = forms.CharField(
        label="Signing secret",
        max_length=SECRET_MAX_LENGTH,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Webhooks: 16 characters or more. The X-ReleaseHub-Signature-256 header is its HMAC of the body.",
    )
    apprise_url = forms.CharField(
        label="Chat URL (apprise)",
        max_length=APPRISE_URL_MAX_LENGTH,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Chat: for example slack://TokenA/TokenB/TokenC/#releases or discord://id/token — it holds a token, "
        "so it is encrypted and never shown again.",
    )

    def __init__(self, *args, environments, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments
        # Checkboxes keep their own class: BootstrapForm gave the list one meant for text inputs.
        self.fields["events"].widget.attrs["class"] = "form-check-input"
