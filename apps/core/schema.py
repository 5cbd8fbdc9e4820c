"""OpenAPI schema generation (drf-spectacular)."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The error body of every 4xx response (API.md "Conventions")."""

    error = serializers.CharField(help_text="Machine-readable code, e.g. `invalid`, `not_found`, `conflict`.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation messages per field (dotted paths for nested fields).",
    )
    rules = serializers.ListField(child=serializers.DictField(), required=False, help_text="Failed policy rules.")


class AutoSchema(SpectacularAutoSchema):
    """Documents the error responses every operation can return, so clients (and schemathesis) know them,
    and the input serializers of apps.core.viewsets.ServiceViewSet."""

    def get_request_serializer(self):
        action = getattr(self.view, "action", None)
        serializer_class = {
            "create": getattr(self.view, "create_serializer_class", None),
            "partial_update": getattr(self.view, "update_serializer_class", None),
        }.get(action)
        return serializer_class() if serializer_class else super().get_request_serializer()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {"400": "Invalid input", "401": "Not authenticated", "403": "Not allowed", "429": "Throttled"}
        not_found = []
        if "{" in self.path:
            not_found.append("Unknown, or not visible to the caller")
        if self._is_paginated_list():
            # DRF's PageNumberPagination answers 404 for ?page= past the last page or not a number.
            not_found.append("No such page")
        if not_found:
            errors["404"] = "; ".join(not_found)
        if self.method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            errors["409"] = "Conflict with the current state"
        if self.method.upper() in ("POST", "PUT", "PATCH"):
            errors["413"] = "Request body too large"
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction
                )
        return responses

    def _is_paginated_list(self) -> bool:
        return self.method.upper() == "GET" and self._is_list_view() and self._get_paginator() is not None
