from celery import shared_task


@shared_task(name="approvals.expire", queue="celery")
def expire() -> int:
    """Beat: reject deployments whose approval requests expired unanswered."""
    from .services import expire_due

    return expire_due()
