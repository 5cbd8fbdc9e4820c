from django.db import models


class TimestampedModel(models.Model):
    """Base of domain models: creation and last-change times, kept in UTC."""

    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


class HistoryContext(models.Model):
    """Extra columns of every history table: the channel and client IP of the change.

    simple-history records the user itself; `history()` fills these from the action context.
    """

    history_channel = models.CharField(max_length=16, blank=True, default="")
    history_ip = models.CharField(max_length=45, blank=True, default="")

    class Meta:
        abstract = True
