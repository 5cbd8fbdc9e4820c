"""Query-string filters shared by the apps' APIs and pages (django-filter)."""

import json
from datetime import UTC

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db import connection
from django.db.models import F, Func, TextField, Value
from django.utils import timezone
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC here rather than by the database driver.

    ISO 8601 allows values no database compares: SQLite's adapter overflows converting
    0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00 to UTC, and PostgreSQL refuses UTC
    offsets beyond ±15:59. Converted here, such input is a 400 instead of a 500.
    """

    default_error_messages = {"overflow": "Date and time out of the supported range."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or timezone.is_naive(value):
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class LabelFilter(django_filters.CharFilter):
    """`?label=key:value` on a JSON `labels` field.

    PostgreSQL answers with JSON containment (`@>`), which a GIN index on labels serves;
    SQLite compares the extracted key (JSON_EXTRACT) with an explicitly quoted path: the
    ORM's key lookup would read a numeric key such as "2024" as an array index.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("help_text", "key:value, e.g. team:payments.")
        kwargs.setdefault("field_name", "labels")
        # The key as a lookup path: no "__", which the ORM would read as a separator.
        kwargs.setdefault("validators", [RegexValidator(r"^(?!.*__)[A-Za-z0-9._/-]+:", "Use key:value.")])
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        key, _, wanted = value.partition(":")
        if connection.vendor == "postgresql":
            return qs.filter(**{f"{self.field_name}__contains": {key: wanted}})
        value = Func(
            F(self.field_name), Value(f"$.{json.dumps(key)}"), function="JSON_EXTRACT", output_field=TextField()
        )
        return qs.alias(label_value=value).filter(label_value=wanted)
