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


class IdempotencyKey(models.Model):
    """The response to a POST sent with an `Idempotency-Key` header, replayed when the client retries.

    Scoped to the user; kept for IDEMPOTENCY_KEY_TTL. `response_status` is null while the
    first request is still being processed. Bookkeeping, not a domain record: no history.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="HMAC-SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"
