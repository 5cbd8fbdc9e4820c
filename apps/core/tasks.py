from celery import shared_task

from . import idempotency


@shared_task(name="core.purge_idempotency_keys", queue="celery")
def purge_idempotency_keys() -> int:
    """Forget Idempotency-Key records past their lifetime (hourly from beat)."""
    return idempotency.purge_expired()
