import csv
import itertools
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps.core.errors import ValidationFailed

from ..filters import AuditEventFilterSet
from ..models import AuditEvent
from ..selectors import audit_events_visible_to
from .serializers import AuditEventSerializer

EXPORT_FIELDS = AuditEventSerializer.Meta.fields


class _Echo:
    def write(self, value: str) -> str:
        return value


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The append-only audit trail. Auditors see every event; everyone else sees their own."""

    queryset = AuditEvent.objects.none()  # the model, for the schema; rows come from get_queryset
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["id", "at"]
    ordering = ["-id"]

    def get_queryset(self):
        return audit_events_visible_to(self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["csv", "json"], default="json")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/json"): AuditEventSerializer(many=True),
        },
    )
    @action(detail=False, pagination_class=None)
    def export(self, request):
        """Every matching event, oldest first, streamed as CSV or as a JSON array."""
        fmt = request.query_params.get("format", "json")
        if fmt not in ("csv", "json"):
            raise ValidationFailed("format must be csv or json.", fields={"format": ["Choose csv or json."]})
        events = self.filter_queryset(self.get_queryset()).order_by("id").iterator(chunk_size=1000)
        rows = (AuditEventSerializer(event).data for event in events)
        if fmt == "csv":
            writer = csv.writer(_Echo())
            body = (writer.writerow([_csv_cell(row, field) for field in EXPORT_FIELDS]) for row in rows)
            response = StreamingHttpResponse(
                itertools.chain([writer.writerow(EXPORT_FIELDS)], body), content_type="text/csv"
            )
        else:
            response = StreamingHttpResponse(_json_array(rows), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="audit-events.{fmt}"'
        return response


def _json_array(rows):
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, cls=DjangoJSONEncoder)
    yield "]"


def _csv_cell(row: dict, field: str) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ would be read as a formula."""
    value = json.dumps(row[field], cls=DjangoJSONEncoder) if field == "details" else row[field]
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
