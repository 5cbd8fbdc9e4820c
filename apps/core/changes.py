"""Saving validated model changes from services, with the diff their audit event records."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from .errors import Conflict, ValidationFailed

# Codes of Django's uniqueness errors; conditional UniqueConstraints set violation_error_code="unique".
UNIQUE_CODES = {"unique", "unique_together"}


def validated_save(instance: models.Model, *, conflict: str = "") -> None:
    """full_clean() then save(); model validation errors become ValidationFailed with per-field messages.

    A uniqueness race that passes validation but fails in the database becomes Conflict.
    """
    try:
        instance.full_clean()
    except ValidationError as exc:
        fields = {field: list(messages) for field, messages in exc.message_dict.items()}
        codes = {error.code for errors in exc.error_dict.values() for error in errors}
        if codes & UNIQUE_CODES:
            raise Conflict(conflict or "It exists already.", fields=fields) from exc
        raise ValidationFailed(fields=fields) from exc
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise Conflict(conflict or "It exists already.") from exc
        raise ValidationFailed("The database refused the values.") from exc


def apply_changes(instance: models.Model, changes: dict[str, Any]) -> dict[str, list]:
    """Set the changed fields on `instance`; return {field: [old, new]} for the audit trail."""
    diff = {}
    for field, new in changes.items():
        old = getattr(instance, field)
        if old != new:
            setattr(instance, field, new)
            diff[field] = [_plain(old), _plain(new)]
    return diff


def _plain(value):
    """Related objects by their natural key (slug, name), everything else as it is."""
    if isinstance(value, models.Model):
        return getattr(value, "slug", None) or str(value)
    return value


def _is_unique_violation(exc: IntegrityError) -> bool:
    """A uniqueness race, as opposed to another constraint (a check, a NOT NULL) the input broke."""
    cause = exc.__cause__
    return type(cause).__name__ == "UniqueViolation" or "UNIQUE constraint failed" in str(exc)
