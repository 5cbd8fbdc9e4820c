"""Domain errors: expected, user-facing failures raised by services.

The API renders them as API.md's error body with their HTTP status
(`apps.core.api.exception_handler`); pages show them as messages.
"""


class ReleaseHubError(Exception):
    """Base of every expected failure. Subclasses set `code` and `http_status`."""

    code = "error"
    http_status = 400

    def __init__(self, detail: str = "", *, fields: dict[str, list[str]] | None = None, **extra) -> None:
        super().__init__(detail)
        self.detail = detail or self.default_detail
        self.fields = fields
        self.extra = extra

    default_detail = "The request could not be completed."


class ValidationFailed(ReleaseHubError):
    """Input is malformed or breaks a rule of the model."""

    code, http_status, default_detail = "invalid", 400, "Invalid input."


class NotAuthenticated(ReleaseHubError):
    code, http_status, default_detail = "not_authenticated", 401, "Authentication credentials were not provided."


class PermissionDenied(ReleaseHubError):
    code, http_status, default_detail = "permission_denied", 403, "You do not have permission to do this."


class NotFound(ReleaseHubError):
    """Unknown, or invisible to the caller: both look the same from outside."""

    code, http_status, default_detail = "not_found", 404, "Not found."


class Conflict(ReleaseHubError):
    """Duplicate, overlap or concurrent change."""

    code, http_status, default_detail = "conflict", 409, "The request conflicts with the current state."


class InvalidTransition(Conflict):
    """A state machine refused the requested transition."""

    code, default_detail = "invalid_transition", "This action is not possible in the current state."


class PolicyViolation(ReleaseHubError):
    """A policy forbids the action; `extra["rules"]` lists the failed rules."""

    code, http_status, default_detail = "policy_violation", 422, "A policy forbids this action."
