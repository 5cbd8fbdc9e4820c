"""Periodic drift detection (beat: `inventory.check_drift`, every DRIFT_CHECK_INTERVAL seconds)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db.models import Q

from apps.environments.models import Environment

from . import services
from .models import Observation

logger = logging.getLogger(__name__)


@shared_task(name="inventory.check_drift", ignore_result=True)
def check_drift() -> int:
    """Compare what every target serves or reported with the installation records; returns the drifted count.
    One environment's failure is logged and does not stop the others."""
    reported = Observation.objects.values("environment_id")
    environments = Environment.objects.filter(Q(targets__health_check_url__gt="") | Q(pk__in=reported)).distinct()
    drifted = 0
    for environment in environments.order_by("pk"):
        try:
            readings = services.drift_check(actor=None, environment=environment)
        except Exception:  # one environment must not keep the others unchecked
            logger.exception("drift check of %s failed", environment.slug)
            continue
        drifted += sum(1 for r in readings if r.observation and r.observation.drifted)
    return drifted
