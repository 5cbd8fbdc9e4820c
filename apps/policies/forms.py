"""Forms of the policy set editor. They only parse input: the services validate the rules, check permissions and
save."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet

from apps.core.forms import BootstrapForm, JSONObjectField
from apps.environments.choices import Tier
from apps.environments.models import Environment

from .models import PolicySet
from .rules import KINDS
from .services import RULE_FIELDS


class EnvironmentsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Environment) -> str:
        return f"{obj.name} ({obj.slug})"


class PolicySetForm(BootstrapForm):
    """A policy set's name and where it applies; `slug` when creating one, `active` when editing one."""

    slug = forms.SlugField(
        max_length=50, help_text="Used in URLs, the API and rule names (slug/kind); it cannot change later."
    )
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    environments = EnvironmentsField(
        queryset=Environment.objects.none(),
        to_field_name="slug",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="Environments you manage. Hold Ctrl (⌘ on a Mac) to choose several.",
    )
    tiers = forms.MultipleChoiceField(
        choices=Tier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Every environment of these tiers, also those created later.",
    )
    all_environments = forms.BooleanField(required=False, label="Every environment")
    active = forms.BooleanField(required=False, help_text="An inactive set is kept, and checks nothing.")

    def __init__(self, *args, environments: QuerySet[Environment], instance: PolicySet | None = None, **kwargs) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "description": instance.description,
                    "environments": [e.slug for e in instance.environments.all()],
                    "tiers": instance.tiers,
                    "all_environments": instance.all_environments,
                    "active": instance.active,
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["environments"].queryset = environments
        self.fields["tiers"].widget.attrs["class"] = "form-check-input"
        del self.fields["slug" if instance is not None else "active"]

    def values(self) -> dict:
        """The service's keyword arguments (call after is_valid())."""
        return {**self.cleaned_data, "environments": list(self.cleaned_data["environments"])}


class ParamsField(JSONObjectField):
    """A rule's parameters as a JSON object; `{}` shown as such, so the textarea says what it expects."""

    def prepare_value(self, value):
        return "{}" if value == {} else super().prepare_value(value)


class RuleForm(BootstrapForm):
    """One rule of the editor: its kind, parameters and override settings."""

    kind = forms.ChoiceField(choices=[("", "Choose a kind…"), *((name, kind.title) for name, kind in KINDS.items())])
    params = ParamsField(label="Parameters (JSON)", initial={})
    overridable = forms.BooleanField(required=False, initial=True)
    two_person = forms.BooleanField(required=False, label="Two-person override")

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in RULE_FIELDS}


class BaseRuleFormSet(forms.BaseFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        form.fields["DELETE"].label = "Remove"
        form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def rules(self) -> list[RuleForm]:
        """The rows that make the rules, in order (call after is_valid()): not removed, not left blank."""
        return [row for row in self.forms if row.cleaned_data and not row.cleaned_data.get("DELETE")]


def rule_formset(*args, extra: int = 1, **kwargs) -> BaseRuleFormSet:
    formset_class = forms.formset_factory(RuleForm, formset=BaseRuleFormSet, extra=extra, can_delete=True)
    return formset_class(*args, prefix="rules", **kwargs)


def as_initial(form: forms.Form) -> dict:
    """What a bound form holds, as the initial values of an unbound one."""
    return {name: form[name].value() for name in form.fields}


def with_one_more_rule(formset: BaseRuleFormSet) -> BaseRuleFormSet:
    """The editor's rules drawn again, unbound (so without errors), with what was typed, without the rows marked
    for removal, and with one more blank row: the "Add rule" button, which needs no JavaScript."""
    filled, blank = [], 0
    for index, row in enumerate(formset.forms):
        if row["DELETE"].value():
            continue
        if index < formset.initial_form_count() or row.has_changed():
            filled.append(as_initial(row))
        else:
            blank += 1
    return rule_formset(initial=filled, extra=blank + 1)
