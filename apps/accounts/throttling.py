from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from apps.core.context import current

from .models import ApiToken


class ApiRateThrottle(SimpleRateThrottle):
    """Requests per API token (API_TOKEN_RATE), per signed-in user, or per client IP on the few views open to
    anonymous callers (API_USER_RATE). Failed sign-ins are limited by FailedSignIns."""

    scope = "api"

    def __init__(self) -> None:
        pass  # the rate depends on the request: see allow_request

    def allow_request(self, request, view) -> bool:
        self.rate = settings.API_TOKEN_RATE if isinstance(request.auth, ApiToken) else settings.API_USER_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{current().ip}"  # the audit trail's notion of the client address (trusted proxies only)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class FailedSignIns:
    """Counts failed sign-ins (bad API tokens, wrong passwords) per client IP, in the cache, per minute.

    DRF checks throttles only after authentication succeeded, so guessing tokens or passwords
    would otherwise be unlimited. Past AUTH_FAILURES_PER_MINUTE, further attempts are refused
    until the minute is over, whatever their credentials.
    """

    WINDOW = 60

    @staticmethod
    def _key(ip: str | None) -> str:
        return f"releasehub:failed-sign-ins:{ip or 'unknown'}"

    @classmethod
    def exceeded(cls, ip: str | None) -> bool:
        return cache.get(cls._key(ip), 0) >= settings.AUTH_FAILURES_PER_MINUTE

    @classmethod
    def record(cls, ip: str | None) -> None:
        key = cls._key(ip)
        if not cache.add(key, 1, timeout=cls.WINDOW):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=cls.WINDOW)
