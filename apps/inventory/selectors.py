"""What runs where: reads of installation records."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Installation


def current_installations(**filters) -> QuerySet[Installation]:
    """The open installation records (what runs now), e.g. `current_installations(environment=env)` or
    `(target=t, application=a)`: one query on the partial indexes of current rows."""
    return (
        Installation.objects.filter(current=True, **filters)
        .select_related("target", "application", "artifact", "deployment")
        .order_by("target__name", "application__slug")
    )
