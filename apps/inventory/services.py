"""Installation records, written by the deployment engine as targets change."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.catalog.models import Artifact

from .models import Installation


def _close_current(target_id: int, application_id: int, now) -> Installation | None:
    current = (
        Installation.objects.select_for_update()
        .filter(target_id=target_id, application_id=application_id, current=True)
        .first()
    )
    if current is not None:
        current.current, current.until = False, now
        current.save(update_fields=["current", "until"])
    return current


def record_installation(*, deployment, target_id: int, artifact_id: int) -> Installation:
    """`artifact` now runs on the target, installed by `deployment`; closes the record it replaces.
    Recording the same artifact by the same deployment again (a re-run step) changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        application_id = Artifact.objects.values_list("application_id", flat=True).get(pk=artifact_id)
        current = Installation.objects.filter(target_id=target_id, application_id=application_id, current=True).first()
        if current is not None and current.artifact_id == artifact_id and current.deployment_id == deployment.pk:
            return current
        replaced = _close_current(target_id, application_id, now)
        return Installation.objects.create(
            environment_id=deployment.environment_id,
            target_id=target_id,
            application_id=application_id,
            artifact_id=artifact_id,
            deployment=deployment,
            replaced=replaced,
            since=now,
        )


def record_rollback(*, deployment, target_id: int) -> Installation | None:
    """The deployment's installation on the target was undone: what it replaced runs again (a new record,
    so the timeline shows the rollback); nothing runs there when it replaced nothing. Recording the same
    rollback twice (two undone steps, a re-run) changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        application_id = deployment.application_id
        mine = (
            Installation.objects.filter(target_id=target_id, deployment=deployment, application_id=application_id)
            .select_related("replaced")
            .order_by("since", "id")
            .first()
        )
        current = Installation.objects.filter(target_id=target_id, application_id=application_id, current=True).first()
        if mine is None or current is None or current.deployment_id != deployment.pk:
            return None  # nothing installed by this deployment runs there (any more)
        if current.pk != mine.pk:
            return current  # restored already
        _close_current(target_id, application_id, now)
        if mine.replaced is None:
            return None
        return Installation.objects.create(
            environment_id=deployment.environment_id,
            target_id=target_id,
            application_id=application_id,
            artifact_id=mine.replaced.artifact_id,
            deployment=deployment,
            replaced=mine,
            since=now,
        )
