"""Periodic drift detection (beat: `inventory.check_drift`, every DRIFT_CHECK_INTERVAL seconds)."""

from celery import shared_task

from . import services


@shared_task(name="inventory.check_drift", queue="celery", ignore_result=True)
def check_drift() -> int:
    """Compare what every target serves or reported with the installation records; returns the drifted count."""
    return services.drift_check_all()
