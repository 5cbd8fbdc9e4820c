"""django-simple-history wired to the action context.

Use `history = history()` on every domain model (instead of `HistoricalRecords()`): its
history rows then carry the acting user, channel and client IP, also in workers where
there is no request. Add `AppendOnly("historical<model>")` to the migration that creates
the history table (see `apps.core.migration_ops`).
"""

from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from .context import current
from .models import HistoryContext


def _context_user(instance=None, request=None, **kwargs):
    return current().user


def history(**kwargs) -> HistoricalRecords:
    """HistoricalRecords whose rows record the actor, channel and IP of the change."""
    kwargs.setdefault("bases", [HistoryContext])
    return HistoricalRecords(get_user=_context_user, **kwargs)


@receiver(pre_create_historical_record)
def _stamp_channel_and_ip(sender, history_instance, **kwargs) -> None:
    ctx = current()
    if isinstance(history_instance, HistoryContext):
        history_instance.history_channel = ctx.channel
        history_instance.history_ip = ctx.ip or ""
