"""Bench-only Celery task: the floor of bench/engine.py, a chain of no-op tasks on the engine's broker.

Each `bench_floor.hop` enqueues the next one until the count reaches the total; the last one inserts
a Hit named after the run, whose created_at is the end of the chain. Found by Celery's autodiscovery
only where the floor app is installed (bench.floor.settings).
"""

from celery import shared_task

from .models import Hit


@shared_task(name="bench_floor.hop", queue="celery")
def hop(count: int, total: int, run: str) -> None:
    """Hop `count` of `total`: send the next one, or record the end of the chain."""
    if count < total:
        hop.apply_async((count + 1, total, run))
    else:
        Hit.objects.create(name=run)
