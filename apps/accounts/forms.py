from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where it is used, e.g. “GitHub Actions, payments-api”.")
    scopes = forms.MultipleChoiceField(
        choices=list(settings.API_TOKEN_SCOPES.items()), widget=forms.CheckboxSelectMultiple, initial=["read"]
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires in")

    def expires_at(self):
        value = self.cleaned_data["expires_in"]
        return None if value == "never" else timezone.now() + timedelta(days=int(value))
