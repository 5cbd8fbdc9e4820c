"""Validation of the free-form fields (labels, attributes, names), shared by models, services and the API."""

import math
import re
import zoneinfo

from django.core.exceptions import ValidationError

from apps.core.errors import ValidationFailed

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$")
MAX_LABELS = 50
MAX_ATTRIBUTES = 100
MAX_TEXT = 1024


def validate_labels(value) -> None:
    """Labels: an object of up to 50 string keys (letters, digits, . _ / -) to string values."""
    if not isinstance(value, dict):
        raise ValidationError('Labels must be an object of strings, e.g. {"team": "payments"}.')
    if len(value) > MAX_LABELS:
        raise ValidationError(f"At most {MAX_LABELS} labels.")
    for key, item in value.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise ValidationError(f"Label key {key!r}: use 1-63 letters, digits, '.', '_', '/', '-'.")
        if not isinstance(item, str) or len(item) > 255:
            raise ValidationError(f"Label {key!r}: the value must be a string of at most 255 characters.")
        if "\x00" in item:  # PostgreSQL's jsonb cannot hold it
            raise ValidationError(f"Label {key!r}: the value must not contain NUL characters.")


def validate_attributes(value) -> None:
    """Attributes: an object whose keys are identifiers (usable in templates as target.attributes.KEY)
    and whose values are strings, numbers or booleans."""
    if not isinstance(value, dict):
        raise ValidationError("Attributes must be an object.")
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"At most {MAX_ATTRIBUTES} attributes.")
    for key, item in value.items():
        if not isinstance(key, str) or not IDENTIFIER.match(key):
            raise ValidationError(f"Attribute key {key!r}: letters, digits and _, not starting with a digit.")
        if isinstance(item, str):
            if len(item) > MAX_TEXT:
                raise ValidationError(f"Attribute {key!r}: at most {MAX_TEXT} characters.")
            if "\x00" in item:  # PostgreSQL's jsonb cannot hold it
                raise ValidationError(f"Attribute {key!r}: the value must not contain NUL characters.")
        elif not isinstance(item, bool | int | float) or not math.isfinite(item):  # JSON has no NaN or infinity
            raise ValidationError(f"Attribute {key!r}: the value must be a string, a finite number or a boolean.")


def validate_identifier(value: str) -> None:
    if not IDENTIFIER.match(value or ""):
        raise ValidationError("Use letters, digits and _, not starting with a digit (at most 100).")


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.") from exc


# Path segments the pages and the API use next to object slugs (/environments/new/): no object may be named so.
# "compare" is the environment comparison of API.md (/api/v1/environments/compare/).
RESERVED_SLUGS = frozenset({"new", "compare"})


def check_slug_available(slug: str) -> None:
    """Raise ValidationFailed for a slug the pages' URLs reserve."""
    if slug in RESERVED_SLUGS:
        raise ValidationFailed(fields={"slug": [f"{slug!r} is reserved; choose another slug."]})
