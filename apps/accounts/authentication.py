from rest_framework import authentication, exceptions

from apps.core.context import current
from apps.core.errors import NotAuthenticated

from .services import token_authenticate
from .throttling import FailedSignIns


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer rh_<prefix>_<secret>` with an API token (API.md "Tokens").

    No header: not this scheme (the session may still authenticate). A header with a bad,
    expired or revoked token: 401, never a fallback to the session.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        ip = current().ip
        if FailedSignIns.exceeded(ip):
            raise exceptions.Throttled(wait=FailedSignIns.WINDOW, detail="Too many failed sign-ins from this address.")
        try:
            token = token_authenticate(raw=raw, ip=ip)
        except NotAuthenticated as exc:
            FailedSignIns.record(ip)
            raise exceptions.AuthenticationFailed(exc.detail) from exc
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
