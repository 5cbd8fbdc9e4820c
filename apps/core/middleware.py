import zoneinfo

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .context import Channel, acting, client_ip


class RequestContextMiddleware:
    """Set the action context (actor, channel ui/api, client IP) for the whole request."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = Channel.API if request.path.startswith("/api/") else Channel.UI
        with acting(channel=channel, ip=client_ip(request), request=request):
            return self.get_response(request)


class UserTimezoneMiddleware:
    """Show pages' times in the signed-in user's time zone (stored in UTC regardless).

    Not under /api/: API.md returns times in UTC whichever way the caller authenticates.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith("/api/"):
            user = None
        try:
            tz = zoneinfo.ZoneInfo(user.timezone) if user is not None and user.is_authenticated else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = None
        if tz is None:
            timezone.deactivate()
        else:
            timezone.activate(tz)
        return self.get_response(request)
