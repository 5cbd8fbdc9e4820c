"""The form of an environment's GitOps tab. It only parses input: services.repository_set validates (the model's
validators, the template's syntax, that the named variables are secrets), checks permissions and saves."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.forms import BootstrapForm
from apps.environments.models import Environment

from .models import EnvironmentRepository, Mode
from .providers import PROVIDERS
from .selectors import secret_names
from .services import REPOSITORY_FIELDS

PROVIDER_NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}
SECRET_FIELDS = ("credential_variable", "api_token_variable", "webhook_secret_variable")


def _help(name: str) -> str:
    return str(EnvironmentRepository._meta.get_field(name).help_text)


class RepositoryForm(BootstrapForm):
    """Set or change an environment's repository. The secret-variable fields offer the environment's secret
    variables (and a name saved earlier that is no longer one, so the service can say what is wrong with it)."""

    url = forms.CharField(
        max_length=2048,
        label="Repository URL",
        help_text="https://, ssh://, user@host:path, file:// or a local path. No credentials in it.",
        widget=forms.TextInput(attrs={"placeholder": "https://git.example.com/platform/env-prod.git"}),
    )
    branch = forms.CharField(max_length=200, initial="main", help_text="The branch the operator applies.")
    path = forms.CharField(
        max_length=500,
        label="File path",
        help_text=_help("path"),
        widget=forms.TextInput(attrs={"placeholder": "apps/web/values.yaml", "class": "font-monospace"}),
    )
    manifest_template = forms.CharField(
        strip=False,
        label="Manifest template",
        help_text=_help("manifest_template"),
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "font-monospace"}),
    )
    mode = forms.ChoiceField(
        choices=Mode.choices,
        initial=Mode.PUSH,
        help_text="Push commits straight to the branch; a pull request waits for someone to merge it.",
    )
    credential_variable = forms.ChoiceField(required=False, label="Credential", help_text=_help("credential_variable"))
    ssh_known_hosts = forms.CharField(
        required=False,
        strip=False,
        label="SSH known hosts",
        help_text=_help("ssh_known_hosts"),
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "font-monospace"}),
    )
    provider = forms.ChoiceField(
        required=False,
        choices=[("", "None"), *[(name, PROVIDER_NAMES[name]) for name in PROVIDERS]],
        help_text="Needed for pull requests, and to read their state.",
    )
    api_url = forms.CharField(max_length=500, required=False, label="API URL", help_text=_help("api_url"))
    project = forms.CharField(max_length=300, required=False, help_text=_help("project"))
    api_token_variable = forms.ChoiceField(required=False, label="API token", help_text=_help("api_token_variable"))
    webhook_secret_variable = forms.ChoiceField(
        required=False, label="Webhook secret", help_text=_help("webhook_secret_variable")
    )
    health_url = forms.CharField(max_length=2048, required=False, label="Health URL", help_text=_help("health_url"))
    sync_timeout = forms.IntegerField(
        min_value=0, initial=3600, help_text="Seconds to wait for the merge and the sync, at most 7 days."
    )
    poll_interval = forms.IntegerField(
        min_value=0, initial=30, help_text="Seconds between polls of the provider and the health URL."
    )

    def __init__(self, *args, environment: Environment, repository: EnvironmentRepository | None = None, **kwargs):
        if repository is not None:
            kwargs.setdefault("initial", {name: getattr(repository, name) for name in REPOSITORY_FIELDS})
        super().__init__(*args, **kwargs)
        self.secret_names = names = secret_names(environment)
        for name in SECRET_FIELDS:
            choices = [("", "None"), *[(secret, secret) for secret in names]]
            current = getattr(repository, name, "") if repository else ""
            if current and current not in names:
                choices.append((current, f"{current} (not a secret variable here)"))
            self.fields[name].choices = choices

    def clean_manifest_template(self) -> str:
        """Browsers send CRLF line ends; the file committed has LF ones."""
        return self.cleaned_data["manifest_template"].replace("\r\n", "\n")

    def clean_ssh_known_hosts(self) -> str:
        return self.cleaned_data["ssh_known_hosts"].replace("\r\n", "\n").strip()

    def values(self) -> dict[str, Any]:
        """The service's keyword arguments (call after is_valid())."""
        return {name: self.cleaned_data[name] for name in REPOSITORY_FIELDS}
