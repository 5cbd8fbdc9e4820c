from rest_framework import permissions

from .models import ApiToken


class TokenScopePermission(permissions.BasePermission):
    """Limit token-authenticated requests to the token's scopes; sessions are not limited.

    Reads need `read`. Writes need the scope the view names in `write_scope`; a view
    without one cannot be written to with a token at all.
    """

    message = "This token's scopes do not allow this request."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        if request.method in permissions.SAFE_METHODS:
            needed = getattr(view, "read_scope", "read")
        else:
            needed = getattr(view, "write_scope", None)
        if needed is None or needed not in token.scopes:
            self.message = f"This token lacks the scope {needed!r}." if needed else "Tokens cannot do this; sign in."
            return False
        return True


class SessionOnly(permissions.BasePermission):
    """The request must come from a signed-in browser session, not an API token."""

    message = "API tokens are managed from a signed-in session, not with a token."

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ApiToken)
