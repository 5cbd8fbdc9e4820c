from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class ApiRateThrottle(SimpleRateThrottle):
    """Requests per API token (API_TOKEN_RATE), per signed-in user or per anonymous IP (API_USER_RATE)."""

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
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
