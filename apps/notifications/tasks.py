"""Thin Celery tasks: send one delivery (retried with exponential backoff), and beat's resend of lost ones.

The database decides: a delivery is attempted only while it is open, due and unclaimed, so a
duplicate or late message does nothing (services.delivery_attempt).
"""

from __future__ import annotations

from celery import shared_task


# Five attempts in all (services.MAX_ATTEMPTS, which the database enforces too): the first and four retries.
@shared_task(bind=True, name="notifications.deliver", queue="celery", max_retries=4)
def deliver(self, delivery_id: int) -> None:
    """Attempt one delivery; when it failed and may be retried, retry after the backoff the service chose
    (NOTIFICATION_RETRY_BASE_SECONDS * 2 ** (attempt - 1)). The service stops after its fifth attempt."""
    from .services import delivery_attempt

    retry_in = delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="notifications.resend_lost", queue="celery")
def resend_lost() -> int:
    """Beat: resend deliveries whose message was lost (due for a while, unsent, held by nobody)."""
    from .services import resend_lost as resend

    return resend()
