from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from .models import User

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where it is used, e.g. “GitHub Actions, payments-api”.")
    scopes = forms.MultipleChoiceField(
        choices=list(settings.API_TOKEN_SCOPES.items()),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        initial=["read"],
    )
    expires_in = forms.ChoiceField(
        choices=EXPIRY_CHOICES, initial="90", label="Expires in", widget=forms.Select(attrs={"class": "form-select"})
    )

    def expires_at(self):
        value = self.cleaned_data["expires_in"]
        return None if value == "never" else timezone.now() + timedelta(days=int(value))


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(
        max_length=50, required=False, help_text="Used in URLs and the API. Derived from the name if empty."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MemberForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, empty_label="Choose a person…")

    def __init__(self, *args, team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True).exclude(groups=team.group).order_by("username")
        )
