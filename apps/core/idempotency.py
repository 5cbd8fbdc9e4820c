"""`Idempotency-Key` for POST endpoints that create or start something (DESIGN.md §4).

Same key and same body: the stored response is replayed (header `Idempotent-Replayed: true`).
Same key, different body: 422. Same key while the first request is still running: 409 (for up to
five minutes: a claim older than that without a response belongs to a request that died, and is
given up).
A request that fails (an error response or an exception) forgets its key, so it can be retried.
"""

import functools
import hashlib
import hmac
import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.response import Response

from .errors import Conflict, ReleaseHubError, ValidationFailed
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
ABANDONED_AFTER = timedelta(minutes=5)


class IdempotencyKeyReused(ReleaseHubError):
    code, http_status = "idempotency_key_reused", 422
    default_detail = "This Idempotency-Key was used with a different request."


def _fingerprint(request) -> str:
    """Keyed with SECRET_KEY: a body may hold a secret value, which a plain hash would let anyone guess at."""
    payload = json.dumps([request.method, request.path, request.data], sort_keys=True, cls=DjangoJSONEncoder)
    return hmac.new(settings.SECRET_KEY.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _claim(user, key: str, fingerprint: str) -> IdempotencyKey | Response:
    """Record the key as in flight, or return the stored response of an earlier identical request."""
    now = timezone.now()
    expired = Q(created_at__lt=now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL))
    # A claim still without a response after this long belongs to a process that died mid-request.
    abandoned = Q(response_status__isnull=True, created_at__lt=now - ABANDONED_AFTER)
    IdempotencyKey.objects.filter(expired | abandoned, user=user, key=key).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(user=user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        pass
    earlier = IdempotencyKey.objects.filter(user=user, key=key).first()
    if earlier is None or earlier.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still in progress; retry later.")
    if earlier.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    response = Response(earlier.response_body, status=earlier.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view_method):
    """Decorate a DRF view method (create, or a POST action) to honour the Idempotency-Key header."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > 255 or not key.isprintable():
            raise ValidationFailed(f"{HEADER} must be printable and at most 255 characters.")
        claim = _claim(request.user, key, _fingerprint(request))
        if isinstance(claim, Response):
            return claim
        try:
            response = view_method(self, request, *args, **kwargs)
        except BaseException:
            claim.delete()
            raise
        if response.status_code >= 400:
            claim.delete()
        else:
            claim.response_status, claim.response_body = response.status_code, response.data
            claim.save(update_fields=["response_status", "response_body"])
        return response

    return wrapper


def purge_expired() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL; returns how many."""
    expired_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=expired_before).delete()
    return deleted
