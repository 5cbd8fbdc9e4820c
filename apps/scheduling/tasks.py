from celery import shared_task


@shared_task(name="scheduling.close_slots", queue="celery")
def close_slots() -> int:
    """Beat: complete bookings whose slot ended; cancel scheduled deployments whose slot ended before they
    could start (their requesters are told)."""
    from .services import close_ended_slots

    return close_ended_slots()
