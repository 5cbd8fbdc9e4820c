"""Thin Celery tasks: the engine's unit of work and the beat dispatcher (apps.deployments.engine.runner).

Messages are hints: the database says what is due, so a duplicate, late or redelivered
message does nothing, and a lost one is made up for by the dispatcher.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings


@shared_task(name="deployments.advance", queue="celery")
def advance(deployment_id: int) -> None:
    """Run the next unit of work of one deployment, if it is due and nobody holds it."""
    from .engine import runner

    runner.advance(deployment_id)


@shared_task(name="deployments.dispatch", queue="celery")
def dispatch() -> int:
    """Beat: start due scheduled and queued deployments, wake due waits, resume deployments whose
    worker died (expired lease). Returns how many deployments were handed to workers."""
    from .engine import runner

    return runner.dispatch()


def enqueue(deployment_id: int, budget: float | None = None, eta: datetime | None = None) -> None:
    """Send `advance` for a deployment, with time limits fitted to the unit it will run (`budget`
    seconds of step time; the hard limit leaves room to record the outcome), to run at `eta` if given."""
    soft = (budget or settings.DEPLOYMENT_UNIT_TIME_LIMIT) + settings.DEPLOYMENT_LEASE_MARGIN
    advance.apply_async(
        (deployment_id,), eta=eta, soft_time_limit=soft, time_limit=soft + settings.DEPLOYMENT_LEASE_MARGIN
    )
