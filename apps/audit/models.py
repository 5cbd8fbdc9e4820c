from __future__ import annotations

import hashlib
import json
from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.context import Channel

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One recorded action: who, when, where (channel, IP), what (verb, object, details).

    Append-only and hash-chained: `hash` is the SHA-256 of this event's fields and the
    previous event's hash, so editing or removing an event breaks every later link
    (`manage.py audit_verify` finds the first). On PostgreSQL a trigger also rejects
    UPDATE and DELETE. Written only by `apps.audit.services.audit_record`.
    """

    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    # Kept as text so the trail reads the same after a rename; "system" when no person acted.
    actor_name = models.CharField(max_length=150, editable=False)
    token_prefix = models.CharField(max_length=16, blank=True, editable=False, help_text="API token used, if any.")
    channel = models.CharField(max_length=16, choices=Channel, editable=False)
    ip = models.CharField(max_length=45, blank=True, editable=False)
    verb = models.CharField(max_length=64, editable=False)
    object_type = models.CharField(max_length=100, blank=True, editable=False)
    object_id = models.CharField(max_length=64, blank=True, editable=False)
    summary = models.CharField(max_length=255, blank=True, editable=False)
    # Canonical JSON text (sorted keys, compact), hashed exactly as stored: a JSON column would hand
    # back numbers in another form than they went in (PostgreSQL's jsonb turns 1e16 into an integer).
    details_json = models.TextField(default="{}", editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["at"], name="audit_at"),
            models.Index(fields=["actor", "at"], name="audit_actor_at"),
            models.Index(fields=["actor_name", "at"], name="audit_actor_name_at"),
            models.Index(fields=["verb", "at"], name="audit_verb_at"),
            models.Index(fields=["channel", "at"], name="audit_channel_at"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.verb} {self.object_type}:{self.object_id} by {self.actor_name}"

    @property
    def details(self) -> dict:
        return json.loads(self.details_json)

    def compute_hash(self) -> str:
        """SHA-256 over the canonical JSON of every recorded field and the previous hash."""
        payload = {
            "prev_hash": self.prev_hash,
            "at": self.at.astimezone(UTC).isoformat(),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "token_prefix": self.token_prefix,
            "channel": self.channel,
            "ip": self.ip,
            "verb": self.verb,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "summary": self.summary,
            "details": self.details_json,
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()
